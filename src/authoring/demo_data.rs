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
    /// Days of history before `as_of`: with it, every extract is dated over that time, the
    /// renewals that fell in its last weeks have happened (`outcomes.csv`), and each story
    /// starts long enough before a churn for a weekly run to see it. Without (0), the data is
    /// one snapshot: its stories in the last weeks, nothing has happened yet.
    pub history_days: i64,
}

/// A churn's troubles show this many days or more before it, so a run `OUTCOME_LEAD` days
/// ahead of the outcome can see them; outcomes fall in the last `history_days - OUTCOME_LEAD`
/// days, so every one has a weekly run that far before it.
const OUTCOME_LEAD: i64 = 98;

/// When an account's extracts say things happened: as of one day (no history), or over
/// the history with the troubles starting on `onset`.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    as_of: NaiveDate,
    /// 0 without history.
    history: i64,
    /// The first day the extracts cover.
    start: NaiveDate,
    /// The last day: `as_of`, or the day the account churned.
    end: NaiveDate,
    /// The day the story's troubles begin.
    onset: NaiveDate,
    /// Days usage takes to fall to its low when the account declines.
    ramp: i64,
}

impl Timeline {
    /// A day something ordinary happened: `back` days before `as_of` without history (the
    /// snapshot's draw), anywhere in the covered time with it.
    fn any(&self, rng: &mut ChaCha8Rng, back: std::ops::Range<i64>) -> NaiveDate {
        if self.history == 0 {
            return self.as_of - Duration::days(rng.random_range(back));
        }
        let span = (self.end - self.start).num_days().max(1);
        self.start + Duration::days(rng.random_range(0..span))
    }

    /// A day a trouble showed: `back` days before `as_of` without history, `after` days
    /// after the onset with it (never after the end).
    fn trouble(&self, rng: &mut ChaCha8Rng, back: std::ops::Range<i64>, after: std::ops::Range<i64>) -> NaiveDate {
        if self.history == 0 {
            return self.as_of - Duration::days(rng.random_range(back));
        }
        (self.onset + Duration::days(rng.random_range(after))).min(self.end)
    }
}

/// What happened at a renewal in the history.
struct Outcome {
    date: NaiveDate,
    kind: &'static str,
    arr_after: f64,
    reasons: Vec<&'static str>,
    note: &'static str,
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
    outcomes: BufWriter<File>,
    counts: [u64; 12],
}

const FILES: [&str; 12] = [
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
    "outcomes.csv",
];

/// The product's modules and the segments each is sold to (written once, not per account).
const CATALOGUE: &str = "module,segments
analytics,smb|mid_market|enterprise
automation,mid_market|enterprise
integrations_hub,mid_market|enterprise
sso,enterprise
advanced_reporting,mid_market|enterprise
";

/// The Slack channel's routes (`keepwell.yaml`): two CSMs in three have a Slack user id, the
/// others' messages go to their team's channel; none for the managers, who get the fallback.
fn slack_routes(csms: usize) -> String {
    let mut text = String::from("owner,target\n");
    for csm in 1..=csms {
        let target = match csm % 3 {
            0 => format!("#cs-team-{:02}", (csm - 1) / 6 + 1),
            _ => format!("U0{:08X}", csm * 7919),
        };
        text.push_str(&format!("csm{csm:03}@example.com,{target}\n"));
    }
    text
}

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
        outcomes: open(FILES[11])?,
        counts: [0; 12],
    };
    writeln!(
        w.accounts,
        "account_id,name,industry,country,language,segment,funding_stage,runway_months,arr,seats,contract_start,renewal_date,csm_email,manager_email,last_renewal_date"
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
    // Without history nothing has happened yet: the file has its header only.
    writeln!(w.outcomes, "account_id,date,outcome,arr_before,arr_after,reasons,note")?;
    std::fs::write(out.join("module_catalogue.csv"), CATALOGUE)?;
    let csms = (options.accounts / 40).clamp(3, 2000);
    let managers = csms.div_ceil(6);
    std::fs::write(out.join("slack_routes.csv"), slack_routes(csms))?;
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
    w.outcomes.flush()?;
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
    let history = options.history_days;
    let previous = renewal - Duration::days(365);
    let outcome =
        (history > 0 && previous > contract_start && previous >= as_of - Duration::days(history - OUTCOME_LEAD))
            .then(|| outcome(rng, previous, arr, story, runway.is_some_and(|r| r < 12)));
    let churned = outcome.as_ref().filter(|o| o.kind == "churned");
    let onset = match (history, churned) {
        (0, _) => as_of - Duration::days(USAGE_DAYS),
        // The troubles start well before the churn, so the runs before it see them coming.
        (_, Some(o)) => o.date - Duration::days(rng.random_range(100..150)),
        _ => as_of - Duration::days(rng.random_range(7..120)),
    };
    let t = Timeline {
        as_of,
        history,
        start: as_of - Duration::days(history + USAGE_DAYS),
        end: churned.map_or(as_of, |o| o.date),
        onset,
        ramp: if history == 0 { USAGE_DAYS } else { 90 },
    };
    // A churned account's contract ended on its renewal; a renewed one runs to the next, at
    // the ARR agreed (the CRM's extract is the current state: earlier runs read it too).
    let (renewal_text, arr_now) = match &outcome {
        Some(o) if o.kind == "churned" => (o.date, arr),
        Some(o) => (renewal, o.arr_after),
        None => (renewal, arr),
    };
    if let Some(o) = &outcome {
        writeln!(
            w.outcomes,
            "{id},{},{},{arr:.2},{:.2},{},{}",
            o.date,
            o.kind,
            o.arr_after,
            o.reasons.join("|"),
            o.note
        )?;
        w.counts[11] += 1;
    }
    // The renewal before the current term's, as the CRM keeps it: a run for a day before it
    // (a backfill) reads that one as the renewal to come.
    let last = renewal_text - Duration::days(365);
    let last_renewal = if last > contract_start { last.to_string() } else { String::new() };
    let runway_text = runway.map(|r| r.to_string()).unwrap_or_default();
    writeln!(
        w.accounts,
        "{id},{name},{industry},{country},{language},{segment},{funding},{runway_text},{arr_now:.2},{seats},{contract_start},{renewal_text},{csm_email},{manager_email},{last_renewal}"
    )?;
    w.counts[0] += 1;

    let owned = rng.random_range(0..=MODULES.len().min(3));
    for m in MODULES.iter().take(owned) {
        writeln!(w.modules, "{id},{m},active")?;
        w.counts[1] += 1;
    }

    usage(rng, w, &id, seats, story, &t, contract_start)?;
    tickets(rng, w, &id, seats, story, &t, ticket_id)?;
    contacts(rng, w, &id, story, contract_start, &t, contact_id)?;

    // Surveys: NPS and CSAT, worse for troubled accounts.
    let troubled = story.declining || story.ticket_spike || story.stalled;
    if rng.random_bool(0.7) {
        let nps = if troubled { rng.random_range(0..8) } else { rng.random_range(5..11) };
        let day = if troubled { t.trouble(rng, 5..150, 0..60) } else { t.any(rng, 5..150) };
        writeln!(w.surveys, "{id},{day},nps,{nps}")?;
        w.counts[5] += 1;
    }
    if rng.random_bool(0.6) {
        let csat = if troubled { rng.random_range(1..4) } else { rng.random_range(3..6) };
        let day = if troubled { t.trouble(rng, 5..90, 0..45) } else { t.any(rng, 5..90) };
        writeln!(w.surveys, "{id},{day},csat,{csat}")?;
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
        writeln!(w.engagements, "{id},{},meeting", t.any(rng, 1..120))?;
        w.counts[8] += 1;
    }
    if segment != "smb" && rng.random_bool(if story.declining { 0.3 } else { 0.8 }) {
        writeln!(w.engagements, "{id},{},qbr", t.any(rng, 5..200))?;
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
        writeln!(w.opportunities, "O{:07},{id},upsell,open,{amount:.2},{}", i + 1, t.any(rng, 3..90))?;
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
        let day = if troubled { t.trouble(rng, 1..60, 0..45) } else { t.any(rng, 1..60) };
        writeln!(w.sentiment, "{id},{sentiment},{day},{note}")?;
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
    t: &Timeline,
    contract_start: NaiveDate,
) -> std::io::Result<()> {
    let utilisation = if story.over_entitlement { rng.random_range(1.05..1.4) } else { rng.random_range(0.25..0.95) };
    let base = (seats as f64 * utilisation).max(1.0);
    let feature_rate = rng.random_range(0.5..4.0);
    for n in 0..(t.end - t.start).num_days() {
        let day = t.start + Duration::days(n);
        // With history, no use before the contract started.
        if t.history > 0 && day < contract_start {
            continue;
        }
        // Declining accounts lose up to 70% of their users over the ramp from the onset.
        let fallen = ((day - t.onset).num_days() as f64 / t.ramp as f64).clamp(0.0, 1.0);
        let trend = if story.declining { 1.0 - 0.7 * fallen } else { 1.0 };
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
    t: &Timeline,
    ticket_id: &mut u64,
) -> std::io::Result<()> {
    let mut n = rng.random_range(0..=((seats / 40).min(6) + 2));
    if story.ticket_spike {
        n += rng.random_range(6..14);
    }
    for _ in 0..n {
        *ticket_id += 1;
        let recent = story.ticket_spike && rng.random_bool(0.7);
        let opened = if recent { t.trouble(rng, 1..21, 0..21) } else { t.any(rng, 1..180) };
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
            if c <= t.as_of { c.to_string() } else { String::new() }
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
    t: &Timeline,
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
            started = t.trouble(rng, 5..60, 0..20).max(start);
        }
        let ended = if role == "champion" && story.champion_left {
            t.trouble(rng, 3..80, 0..10).to_string()
        } else {
            String::new()
        };
        let engaged = ended.is_empty() && rng.random_bool(if story.declining { 0.4 } else { 0.75 });
        writeln!(w.contacts, "C{:08},{id},{name},{role},{engaged},{started},{ended}", *contact_id)?;
        w.counts[4] += 1;
    }
    Ok(())
}

/// What happened at the renewal on `date`, drawn from the account's story: troubles and a
/// short runway make churn (or a smaller renewal) likely, over-use an expansion, and a few
/// accounts with no trouble in the data churn anyway, for reasons no extract shows.
fn outcome(rng: &mut ChaCha8Rng, date: NaiveDate, arr: f64, story: Story, short_runway: bool) -> Outcome {
    let troubled = story.declining || story.ticket_spike || story.stalled;
    // A start-up near the end of its money cuts what it can (DOMAIN.md §2's outside-in risk).
    let p: f64 = 0.04
        + if short_runway { 0.20 } else { 0.0 }
        + if story.declining { 0.40 } else { 0.0 }
        + if story.champion_left { 0.25 } else { 0.0 }
        + if story.stalled { 0.30 } else { 0.0 }
        + if story.ticket_spike { 0.15 } else { 0.0 }
        + if story.new_sponsor { 0.05 } else { 0.0 };
    let (kind, arr_after) = if rng.random_bool(p.min(0.9)) {
        ("churned", 0.0)
    } else if troubled && rng.random_bool(0.3) {
        ("downsold", (arr * rng.random_range(0.6..0.85)).round())
    } else if story.over_entitlement && rng.random_bool(0.6) {
        ("expanded", (arr * rng.random_range(1.15..1.4)).round())
    } else {
        ("renewed", arr)
    };
    let mut reasons = Vec::new();
    if kind == "churned" || kind == "downsold" {
        if story.champion_left {
            reasons.push("champion_change");
        }
        if story.declining {
            reasons.push(if arr >= 50_000.0 { "price_to_value" } else { "change_management" });
        }
        if story.ticket_spike {
            reasons.push("service_quality");
        }
        if story.stalled {
            reasons.push("failed_onboarding");
        }
        if story.new_sponsor {
            reasons.push("new_executive");
        }
        if short_runway && reasons.is_empty() {
            reasons.push("price_to_value");
        }
        if reasons.is_empty() {
            const UNSEEN: [&str; 4] = ["price_to_value", "scalability", "integration_gaps", "expectations"];
            reasons.push(UNSEEN[rng.random_range(0..UNSEEN.len())]);
        }
    }
    let note = match reasons.first().copied() {
        Some("champion_change") => "Champion left; nobody took over",
        Some("change_management") => "Never part of how the team works",
        Some("price_to_value") => "Not enough value for the price",
        Some("service_quality") => "Unhappy with support",
        Some("failed_onboarding") => "Never went live",
        Some("new_executive") => "New executive brought their own tool",
        Some("scalability") => "Outgrew the product",
        Some("integration_gaps") => "A missing integration",
        Some(_) => "Expected more than was sold",
        None if kind == "expanded" => "Bought more seats",
        None => "",
    };
    Outcome { date, kind, arr_after, reasons, note }
}
