//! A deterministic generator of realistic customer-success extracts.
//!
//! The same seed and size always give the same files. Accounts follow stories a CS team
//! knows: usage that declines before churn, champions who leave, ticket spikes, stalled
//! implementations, accounts over their entitlement. Rows are streamed to disk, so a
//! million accounts take little memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{Duration, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};

/// Days of daily usage per account.
pub const USAGE_DAYS: i64 = 30;

/// Industries and their weights (share of accounts).
const INDUSTRIES: &[(&str, u32)] = &[
    ("software", 18),
    ("financial_services", 10),
    ("healthcare", 9),
    ("ecommerce", 8),
    ("logistics", 6),
    ("manufacturing", 8),
    ("retail", 7),
    ("travel", 4),
    ("hospitality", 4),
    ("recruiting", 4),
    ("restaurants", 3),
    ("energy", 3),
    ("education", 6),
    ("media", 5),
    ("video_conferencing", 2),
    ("remote_work", 3),
];

/// Countries, their main language and weights.
const COUNTRIES: &[(&str, &str, u32)] = &[
    ("US", "en", 38),
    ("GB", "en", 10),
    ("DE", "de", 9),
    ("FR", "fr", 7),
    ("NL", "nl", 4),
    ("ES", "es", 4),
    ("IT", "it", 4),
    ("SE", "sv", 3),
    ("CA", "en", 5),
    ("AU", "en", 4),
    ("BR", "pt", 4),
    ("JP", "ja", 3),
    ("IN", "en", 3),
    ("MX", "es", 2),
];

const FUNDING: &[(&str, u32)] = &[
    ("seed", 8),
    ("series_a", 14),
    ("series_b", 14),
    ("growth", 14),
    ("bootstrapped", 10),
    ("private_profitable", 15),
    ("public", 15),
    ("multinational", 10),
];

const MODULES: &[&str] = &["analytics", "automation", "integrations_hub", "sso", "advanced_reporting"];

const FIRST_NAMES: &[&str] = &[
    "Ana", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam", "Maya", "Noah",
    "Olga", "Priya",
];
const LAST_NAMES: &[&str] = &[
    "Alvarez", "Becker", "Chen", "Dubois", "Eriksen", "Fischer", "Garcia", "Hughes", "Ito", "Jensen", "Kowalski",
    "Lopez", "Moreau", "Novak", "Okafor", "Patel",
];
const NAME_A: &[&str] = &[
    "Blue", "North", "Bright", "Silver", "Green", "Iron", "Swift", "Clear", "Summit", "Harbor", "Maple", "Quantum",
    "Red", "Solid", "True", "Urban",
];
const NAME_B: &[&str] = &[
    "Peak", "Field", "Wave", "Stone", "Bridge", "Leaf", "Path", "Forge", "Line", "Point", "River", "Works", "Gate",
    "Grove", "Labs", "Systems",
];

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub accounts: usize,
    pub seed: u64,
    pub as_of: NaiveDate,
}

/// What happens to an account, drawn once and reflected in every extract.
#[derive(Debug, Default, Clone, Copy)]
struct Story {
    declining: bool,
    champion_left: bool,
    ticket_spike: bool,
    stalled: bool,
    over_entitlement: bool,
    new_sponsor: bool,
}

pub struct Written {
    pub files: Vec<(String, u64)>,
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
    let total: u32 = items.iter().map(&weight).sum();
    let mut n = rng.random_range(0..total);
    for item in items {
        let w = weight(item);
        if n < w {
            return item;
        }
        n -= w;
    }
    &items[items.len() - 1]
}

struct Writers {
    accounts: BufWriter<File>,
    modules: BufWriter<File>,
    usage: BufWriter<File>,
    tickets: BufWriter<File>,
    contacts: BufWriter<File>,
    surveys: BufWriter<File>,
    milestones: BufWriter<File>,
    sentiment: BufWriter<File>,
    engagements: BufWriter<File>,
    opportunities: BufWriter<File>,
    overrides: BufWriter<File>,
    counts: [u64; 11],
}

const FILES: [&str; 11] = [
    "accounts.csv",
    "modules.csv",
    "daily_usage.csv",
    "support_tickets.csv",
    "contacts.csv",
    "survey_responses.csv",
    "milestones.csv",
    "csm_sentiment.csv",
    "engagements.csv",
    "opportunities.csv",
    "churn_overrides.csv",
];

/// The product's modules and the segments each is sold to (written once, not per account).
const CATALOGUE: &str = "module,segments
analytics,smb|mid_market|enterprise
automation,mid_market|enterprise
integrations_hub,mid_market|enterprise
sso,enterprise
advanced_reporting,mid_market|enterprise
";

pub fn generate(options: &DemoOptions, out: &Path) -> std::io::Result<Written> {
    std::fs::create_dir_all(out)?;
    let open = |name: &str| File::create(out.join(name)).map(|f| BufWriter::with_capacity(1 << 20, f));
    let mut w = Writers {
        accounts: open(FILES[0])?,
        modules: open(FILES[1])?,
        usage: open(FILES[2])?,
        tickets: open(FILES[3])?,
        contacts: open(FILES[4])?,
        surveys: open(FILES[5])?,
        milestones: open(FILES[6])?,
        sentiment: open(FILES[7])?,
        engagements: open(FILES[8])?,
        opportunities: open(FILES[9])?,
        overrides: open(FILES[10])?,
        counts: [0; 11],
    };
    writeln!(
        w.accounts,
        "account_id,name,industry,country,language,segment,funding_stage,runway_months,arr,seats,contract_start,renewal_date,csm_email,manager_email"
    )?;
    writeln!(w.modules, "account_id,module,status")?;
    writeln!(w.usage, "account_id,day,active_users,key_feature_events")?;
    writeln!(w.tickets, "ticket_id,account_id,opened_at,closed_at,priority,category,escalated")?;
    writeln!(w.contacts, "contact_id,account_id,name,role,engaged,start_date,end_date")?;
    writeln!(w.surveys, "account_id,answered_at,kind,score")?;
    writeln!(w.milestones, "account_id,milestone,reached_at")?;
    writeln!(w.sentiment, "account_id,sentiment,updated_at,note")?;
    writeln!(w.engagements, "account_id,day,kind")?;
    writeln!(w.opportunities, "opportunity_id,account_id,kind,stage,amount,created_on")?;
    writeln!(w.overrides, "account_id,expected_churn,set_by,note")?;
    std::fs::write(out.join("module_catalogue.csv"), CATALOGUE)?;
    let csms = (options.accounts / 40).clamp(3, 2000);
    let managers = csms.div_ceil(6);
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let arr_dist = LogNormal::new(10.4, 1.0).expect("valid log-normal");
    let mut ticket_id = 0u64;
    let mut contact_id = 0u64;
    for i in 0..options.accounts {
        account(&mut rng, &mut w, options, i, csms, managers, &arr_dist, &mut ticket_id, &mut contact_id)?;
    }
    for f in [
        &mut w.accounts,
        &mut w.modules,
        &mut w.usage,
        &mut w.tickets,
        &mut w.contacts,
        &mut w.surveys,
        &mut w.milestones,
        &mut w.sentiment,
        &mut w.engagements,
        &mut w.opportunities,
        &mut w.overrides,
    ] {
        f.flush()?;
    }
    Ok(Written { files: FILES.iter().zip(w.counts).map(|(f, n)| (f.to_string(), n)).collect() })
}

#[allow(clippy::too_many_arguments)]
fn account(
    rng: &mut ChaCha8Rng,
    w: &mut Writers,
    options: &DemoOptions,
    i: usize,
    csms: usize,
    managers: usize,
    arr_dist: &LogNormal<f64>,
    ticket_id: &mut u64,
    contact_id: &mut u64,
) -> std::io::Result<()> {
    let as_of = options.as_of;
    let id = format!("A{:06}", i + 1);
    let name = format!(
        "{} {} {}",
        NAME_A[rng.random_range(0..NAME_A.len())],
        NAME_B[rng.random_range(0..NAME_B.len())],
        i + 1
    );
    let industry = pick(rng, INDUSTRIES, |x| x.1).0;
    let &(country, language, _) = pick(rng, COUNTRIES, |x| x.2);
    let funding = pick(rng, FUNDING, |x| x.1).0;
    let runway: Option<u32> = match funding {
        "seed" | "series_a" => Some(rng.random_range(4..30)),
        "series_b" | "growth" => Some(rng.random_range(10..48)),
        _ => None,
    };
    let arr = arr_dist.sample(rng).clamp(3_000.0, 3_000_000.0).round();
    let segment = if arr >= 150_000.0 {
        "enterprise"
    } else if arr >= 25_000.0 {
        "mid_market"
    } else {
        "smb"
    };
    let seats = ((arr / 600.0).round() as u32).max(5);
    let tenure_days = rng.random_range(20..1500);
    let contract_start = as_of - Duration::days(tenure_days);
    // Renewals fall on the contract anniversary: spread over the year.
    let mut renewal = contract_start + Duration::days(365);
    while renewal <= as_of {
        renewal += Duration::days(365);
    }
    let csm = i % csms;
    let csm_email = format!("csm{:03}@example.com", csm + 1);
    let manager_email = format!("manager{:02}@example.com", csm / 6 % managers + 1);
    // A champion leaving often starts the decline, so the two go together.
    let declining = rng.random_bool(0.12);
    let story = Story {
        declining,
        champion_left: rng.random_bool(if declining { 0.35 } else { 0.06 }),
        ticket_spike: rng.random_bool(0.07),
        stalled: tenure_days < 240 && rng.random_bool(0.35),
        over_entitlement: rng.random_bool(0.08),
        new_sponsor: rng.random_bool(0.05),
    };
    // Managers mark some of the worst accounts as expected churn, in their own extract.
    if story.declining && story.champion_left && rng.random_bool(0.6) {
        writeln!(w.overrides, "{id},true,{manager_email},Sponsor confirmed they will not renew")?;
        w.counts[10] += 1;
    }
    let runway_text = runway.map(|r| r.to_string()).unwrap_or_default();
    writeln!(
        w.accounts,
        "{id},{name},{industry},{country},{language},{segment},{funding},{runway_text},{arr:.2},{seats},{contract_start},{renewal},{csm_email},{manager_email}"
    )?;
    w.counts[0] += 1;

    let owned = rng.random_range(0..=MODULES.len().min(3));
    for m in MODULES.iter().take(owned) {
        writeln!(w.modules, "{id},{m},active")?;
        w.counts[1] += 1;
    }

    usage(rng, w, &id, seats, story, as_of)?;
    tickets(rng, w, &id, seats, story, as_of, ticket_id)?;
    contacts(rng, w, &id, story, contract_start, as_of, contact_id)?;

    // Surveys: NPS and CSAT, worse for troubled accounts.
    let troubled = story.declining || story.ticket_spike || story.stalled;
    if rng.random_bool(0.7) {
        let nps = if troubled { rng.random_range(0..8) } else { rng.random_range(5..11) };
        writeln!(w.surveys, "{id},{},nps,{nps}", as_of - Duration::days(rng.random_range(5..150)))?;
        w.counts[5] += 1;
    }
    if rng.random_bool(0.6) {
        let csat = if troubled { rng.random_range(1..4) } else { rng.random_range(3..6) };
        writeln!(w.surveys, "{id},{},csat,{csat}", as_of - Duration::days(rng.random_range(5..90)))?;
        w.counts[5] += 1;
    }

    // Milestones: kickoff, go-live, first value; stalled implementations never go live.
    writeln!(w.milestones, "{id},kickoff,{}", contract_start + Duration::days(rng.random_range(3..15)))?;
    w.counts[6] += 1;
    if !story.stalled {
        let go_live = contract_start + Duration::days(rng.random_range(25..110));
        if go_live <= as_of {
            writeln!(w.milestones, "{id},go_live,{go_live}")?;
            w.counts[6] += 1;
            let first_value = go_live + Duration::days(rng.random_range(5..80));
            if first_value <= as_of && !rng.random_bool(0.04) {
                writeln!(w.milestones, "{id},first_value,{first_value}")?;
                w.counts[6] += 1;
            }
        }
    }

    // Implementation satisfaction, asked once the account is live.
    if !story.stalled && tenure_days > 120 && rng.random_bool(0.6) {
        let score = if story.declining { rng.random_range(1..4) } else { rng.random_range(3..6) };
        writeln!(
            w.surveys,
            "{id},{},implementation,{score}",
            contract_start + Duration::days(rng.random_range(100..120))
        )?;
        w.counts[5] += 1;
    }

    // Meetings and QBRs: fewer when the account is drifting away.
    let meetings = if story.declining { rng.random_range(0..2) } else { rng.random_range(0..6) };
    for _ in 0..meetings {
        writeln!(w.engagements, "{id},{},meeting", as_of - Duration::days(rng.random_range(1..120)))?;
        w.counts[8] += 1;
    }
    if segment != "smb" && rng.random_bool(if story.declining { 0.3 } else { 0.8 }) {
        writeln!(w.engagements, "{id},{},qbr", as_of - Duration::days(rng.random_range(5..200)))?;
        w.counts[8] += 1;
    }

    // Open upsell conversations, most often where usage is above what was bought.
    let upsell = if story.over_entitlement {
        0.6
    } else if troubled {
        0.03
    } else {
        0.15
    };
    if rng.random_bool(upsell) {
        let amount = (arr * rng.random_range(0.1..0.5)).round();
        writeln!(
            w.opportunities,
            "O{:07},{id},upsell,open,{amount:.2},{}",
            i + 1,
            as_of - Duration::days(rng.random_range(3..90))
        )?;
        w.counts[9] += 1;
    }

    // The CSM's own judgement, often but not always in line with the data.
    if rng.random_bool(0.8) {
        let sentiment = if troubled && rng.random_bool(0.7) {
            if rng.random_bool(0.5) { "red" } else { "yellow" }
        } else if rng.random_bool(0.8) {
            "green"
        } else {
            "yellow"
        };
        let note = match sentiment {
            "red" => "Sponsor unresponsive; renewal at risk",
            "yellow" => "Adoption below plan",
            _ => "Steady; good relationship",
        };
        writeln!(w.sentiment, "{id},{sentiment},{},{note}", as_of - Duration::days(rng.random_range(1..60)))?;
        w.counts[7] += 1;
    }
    Ok(())
}

fn usage(
    rng: &mut ChaCha8Rng,
    w: &mut Writers,
    id: &str,
    seats: u32,
    story: Story,
    as_of: NaiveDate,
) -> std::io::Result<()> {
    let utilisation = if story.over_entitlement { rng.random_range(1.05..1.4) } else { rng.random_range(0.25..0.95) };
    let base = (seats as f64 * utilisation).max(1.0);
    let feature_rate = rng.random_range(0.5..4.0);
    for d in 0..USAGE_DAYS {
        let day = as_of - Duration::days(USAGE_DAYS - d);
        // Declining accounts lose up to 70% of their users over the window.
        let trend = if story.declining { 1.0 - 0.7 * d as f64 / USAGE_DAYS as f64 } else { 1.0 };
        let weekend = matches!(chrono::Datelike::weekday(&day), chrono::Weekday::Sat | chrono::Weekday::Sun);
        let noise = rng.random_range(0.85..1.15) * if weekend { 0.3 } else { 1.0 };
        let active = (base * trend * noise).round() as u32;
        let events = (active as f64 * feature_rate * rng.random_range(0.7..1.3)).round() as u32;
        writeln!(w.usage, "{id},{day},{active},{events}")?;
        w.counts[2] += 1;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn tickets(
    rng: &mut ChaCha8Rng,
    w: &mut Writers,
    id: &str,
    seats: u32,
    story: Story,
    as_of: NaiveDate,
    ticket_id: &mut u64,
) -> std::io::Result<()> {
    let mut n = rng.random_range(0..=((seats / 40).min(6) + 2));
    if story.ticket_spike {
        n += rng.random_range(6..14);
    }
    for _ in 0..n {
        *ticket_id += 1;
        let recent = story.ticket_spike && rng.random_bool(0.7);
        let opened = as_of - Duration::days(if recent { rng.random_range(1..21) } else { rng.random_range(1..180) });
        let priority = *pick(rng, &[("low", 30u32), ("normal", 45), ("high", 18), ("critical", 7)], |x| x.1);
        let priority = if story.ticket_spike && rng.random_bool(0.3) { "critical" } else { priority.0 };
        let category = pick(
            rng,
            &[
                ("how_to", 35u32),
                ("bug", 30),
                ("integration", 12),
                ("billing", 8),
                ("complaint", 5),
                ("feature_request", 8),
                ("performance", 4),
            ],
            |x| x.1,
        )
        .0;
        let closed = if rng.random_bool(0.8) {
            let c = opened + Duration::days(rng.random_range(0..20));
            if c <= as_of { c.to_string() } else { String::new() }
        } else {
            String::new()
        };
        let escalated = priority == "critical" && rng.random_bool(0.5);
        writeln!(w.tickets, "T{ticket_id:08},{id},{opened},{closed},{priority},{category},{escalated}")?;
        w.counts[3] += 1;
    }
    Ok(())
}

fn contacts(
    rng: &mut ChaCha8Rng,
    w: &mut Writers,
    id: &str,
    story: Story,
    start: NaiveDate,
    as_of: NaiveDate,
    contact_id: &mut u64,
) -> std::io::Result<()> {
    let n = rng.random_range(1..7);
    for k in 0..n {
        *contact_id += 1;
        let role = match k {
            0 => "champion",
            1 => "executive_sponsor",
            _ if rng.random_bool(0.2) => "admin",
            _ => "user",
        };
        let name = format!(
            "{} {}",
            FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())],
            LAST_NAMES[rng.random_range(0..LAST_NAMES.len())]
        );
        let mut started = start;
        if role == "executive_sponsor" && story.new_sponsor {
            started = as_of - Duration::days(rng.random_range(5..60));
        }
        let ended = if role == "champion" && story.champion_left {
            (as_of - Duration::days(rng.random_range(3..80))).to_string()
        } else {
            String::new()
        };
        let engaged = ended.is_empty() && rng.random_bool(if story.declining { 0.4 } else { 0.75 });
        writeln!(w.contacts, "C{:08},{id},{name},{role},{engaged},{started},{ended}", *contact_id)?;
        w.counts[4] += 1;
    }
    Ok(())
}
