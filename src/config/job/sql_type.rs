//! A source column's type, parsed against DuckDB's type grammar before it reaches any SQL.
//!
//! Types are written into the SQL that declares and loads sources, which runs before the
//! warehouse is locked. Quoting cannot help there (a type is not a string), so a type is
//! accepted only when it parses as one: known type words (`DOUBLE PRECISION`, `TIMESTAMP
//! WITH TIME ZONE`), an optional argument list (`DECIMAL(18, 2)`, `VARCHAR(40)`,
//! `STRUCT(a INTEGER, b VARCHAR)`, `MAP(VARCHAR, DOUBLE)`) and array suffixes (`INTEGER[]`,
//! `DOUBLE[3]`). Nothing else can appear: no quotes, no `;`, no comments, no functions, no
//! clauses such as `GENERATED` or `DEFAULT`, so a type can neither end the statement it is
//! written into nor run anything.

use std::fmt;

/// The words DuckDB's types are made of (case-insensitive).
const TYPE_WORDS: &[&str] = &[
    "BIGINT",
    "INT8",
    "LONG",
    "BIT",
    "BITSTRING",
    "BLOB",
    "BYTEA",
    "BINARY",
    "VARBINARY",
    "BOOLEAN",
    "BOOL",
    "LOGICAL",
    "DATE",
    "DECIMAL",
    "NUMERIC",
    "DOUBLE",
    "FLOAT8",
    "PRECISION",
    "FLOAT",
    "FLOAT4",
    "REAL",
    "HUGEINT",
    "UHUGEINT",
    "INTEGER",
    "INT4",
    "INT",
    "SIGNED",
    "INTERVAL",
    "SMALLINT",
    "INT2",
    "SHORT",
    "TIME",
    "TIMESTAMP",
    "DATETIME",
    "TIMESTAMPTZ",
    "TIMETZ",
    "TIMESTAMP_S",
    "TIMESTAMP_MS",
    "TIMESTAMP_NS",
    "TIMESTAMP_US",
    "WITH",
    "WITHOUT",
    "ZONE",
    "TINYINT",
    "INT1",
    "UBIGINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "UINT128",
    "INT16",
    "INT32",
    "INT64",
    "INT128",
    "UUID",
    "VARCHAR",
    "CHAR",
    "BPCHAR",
    "TEXT",
    "STRING",
    "CHARACTER",
    "VARYING",
    "NVARCHAR",
    "JSON",
    "VARINT",
    "BIGNUM",
    "STRUCT",
    "MAP",
    "UNION",
    "LIST",
];

/// The type words, for "did you mean" hints.
pub(super) fn words() -> impl Iterator<Item = &'static str> {
    TYPE_WORDS.iter().copied()
}

/// The longest type accepted: real types are a few dozen characters.
const MAX_LEN: usize = 512;

/// A column type that parsed; written into SQL as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlType(String);

/// Why a column type was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    #[error("a type cannot be empty")]
    Empty,
    #[error("a type is at most {MAX_LEN} characters")]
    TooLong,
    #[error("`{0}` cannot appear in a type")]
    Character(char),
    #[error("`{0}` is not a type word")]
    Word(String),
    #[error("the type does not parse at `{0}`")]
    Syntax(String),
}

impl SqlType {
    pub fn parse(text: &str) -> Result<SqlType, TypeError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TypeError::Empty);
        }
        if text.len() > MAX_LEN {
            return Err(TypeError::TooLong);
        }
        let tokens = tokens(text)?;
        let mut p = Parser { tokens: &tokens, at: 0 };
        p.parse_type()?;
        match p.tokens.get(p.at) {
            None => Ok(SqlType(text.to_string())),
            Some(t) => Err(TypeError::Syntax(t.text())),
        }
    }

    /// Text, for a column whose declared type was refused (its job does not run).
    pub fn varchar() -> SqlType {
        SqlType("VARCHAR".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Number,
    Punct(char),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Word(w) => w.clone(),
            Token::Number => "a number".into(),
            Token::Punct(c) => c.to_string(),
        }
    }
}

fn tokens(text: &str) -> Result<Vec<Token>, TypeError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut word = String::new();
            while let Some(&c) = chars.peek().filter(|c| c.is_ascii_alphanumeric() || **c == '_') {
                word.push(c);
                chars.next();
            }
            out.push(Token::Word(word));
        } else if c.is_ascii_digit() {
            while chars.peek().is_some_and(|c| c.is_ascii_digit()) {
                chars.next();
            }
            out.push(Token::Number);
        } else if matches!(c, '(' | ')' | ',' | '[' | ']') {
            out.push(Token::Punct(c));
            chars.next();
        } else {
            return Err(TypeError::Character(c));
        }
    }
    Ok(out)
}

struct Parser<'t> {
    tokens: &'t [Token],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn punct(&mut self, c: char) -> bool {
        if self.peek() == Some(&Token::Punct(c)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), TypeError> {
        if self.punct(c) { Ok(()) } else { Err(self.unexpected()) }
    }

    fn unexpected(&self) -> TypeError {
        TypeError::Syntax(self.peek().map_or_else(|| "its end".to_string(), Token::text))
    }

    /// type := word+ [ '(' arguments ')' ] { '[' [number] ']' }
    fn parse_type(&mut self) -> Result<(), TypeError> {
        let mut words = Vec::new();
        while let Some(Token::Word(w)) = self.peek() {
            let upper = w.to_ascii_uppercase();
            if !TYPE_WORDS.contains(&upper.as_str()) {
                return Err(TypeError::Word(w.clone()));
            }
            words.push(upper);
            self.at += 1;
        }
        if words.is_empty() {
            return Err(self.unexpected());
        }
        if self.punct('(') {
            match words.last().map(String::as_str) {
                Some("STRUCT" | "UNION") => self.fields()?,
                Some("MAP") => {
                    self.parse_type()?;
                    self.expect(',')?;
                    self.parse_type()?;
                }
                Some("LIST") => self.parse_type()?,
                _ => self.numbers()?,
            }
            self.expect(')')?;
        }
        while self.punct('[') {
            if self.peek() == Some(&Token::Number) {
                self.at += 1;
            }
            self.expect(']')?;
        }
        Ok(())
    }

    /// name type { ',' name type }: a field's name is any word.
    fn fields(&mut self) -> Result<(), TypeError> {
        loop {
            match self.peek() {
                Some(Token::Word(_)) => self.at += 1,
                _ => return Err(self.unexpected()),
            }
            self.parse_type()?;
            if !self.punct(',') {
                return Ok(());
            }
        }
    }

    /// number { ',' number }
    fn numbers(&mut self) -> Result<(), TypeError> {
        loop {
            if self.peek() != Some(&Token::Number) {
                return Err(self.unexpected());
            }
            self.at += 1;
            if !self.punct(',') {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{SqlType, TypeError};

    #[test]
    fn duckdb_types_parse() {
        for t in [
            "INTEGER",
            "integer",
            "DOUBLE PRECISION",
            "TIMESTAMP WITH TIME ZONE",
            "DECIMAL(18, 2)",
            "VARCHAR(40)",
            "INTEGER[]",
            "DOUBLE[3]",
            "VARCHAR[][]",
            "STRUCT(a INTEGER, b VARCHAR[])",
            "MAP(VARCHAR, DOUBLE)",
            "UNION(num INTEGER, str VARCHAR)",
            "  date  ",
        ] {
            assert!(SqlType::parse(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn anything_that_could_leave_the_type_is_refused() {
        let cases: &[(&str, TypeError)] = &[
            ("VARCHAR); COPY (SELECT 1) TO '/tmp/x'; SELECT CAST(NULL AS VARCHAR", TypeError::Character(';')),
            ("VARCHAR)", TypeError::Syntax(")".into())),
            ("INTEGER, y VARCHAR", TypeError::Syntax(",".into())),
            ("INTEGER DEFAULT 1", TypeError::Word("DEFAULT".into())),
            ("INTEGER GENERATED ALWAYS AS (read_text(chr(47)))", TypeError::Word("GENERATED".into())),
            ("VARCHAR -- comment", TypeError::Character('-')),
            ("VARCHAR /* c */", TypeError::Character('/')),
            ("'VARCHAR'", TypeError::Character('\'')),
            ("\"VARCHAR\"", TypeError::Character('"')),
            ("DECIMAL(18, x)", TypeError::Syntax("x".into())),
            ("STRUCT(a INTEGER", TypeError::Syntax("its end".into())),
            ("INTEGR", TypeError::Word("INTEGR".into())),
            ("", TypeError::Empty),
            ("(INTEGER)", TypeError::Syntax("(".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(SqlType::parse(text).as_ref(), Err(expected), "{text}");
        }
        assert_eq!(SqlType::parse(&"INTEGER ".repeat(100)), Err(TypeError::TooLong));
    }
}
