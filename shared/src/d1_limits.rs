//! D1's limits that local SQLite does not enforce, as pure checks.
//!
//! Production D1 refuses a statement with more than [`MAX_BOUND_PARAMETERS`] bound parameters, a
//! `LIKE`/`GLOB` pattern longer than [`MAX_PATTERN_BYTES`], or a statement longer than
//! [`MAX_STATEMENT_BYTES`]; and past [`MAX_QUERIES_PER_INVOCATION`] queries (every statement of a
//! batch counts) every further query of a Worker invocation fails. The local runtime's SQLite has
//! far higher limits, so code that breaks them would pass every local test and fail in production.
//! The edge's data layer (`leadheat_edge::db`) runs these checks before it sends anything, and a
//! violation is an error there as it would be in production.
//!
//! The statement size counts the SQL text and the bound values (text by its UTF-8 bytes, numbers as
//! 8 bytes), the stricter reading of D1's limit.

use std::ops::Range;

use thiserror::Error;

/// Bound parameters of one statement.
pub const MAX_BOUND_PARAMETERS: usize = 100;
/// Bytes of a `LIKE` or `GLOB` pattern.
pub const MAX_PATTERN_BYTES: usize = 50;
/// Bytes of one statement: its SQL text plus its bound values.
pub const MAX_STATEMENT_BYTES: usize = 100_000;
/// Queries of one Worker invocation (paid plan); every statement of a batch is one query.
pub const MAX_QUERIES_PER_INVOCATION: u32 = 1000;

/// What a statement binds, as far as the limits care.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
}

impl Bound<'_> {
    /// Bytes the value adds to the statement's size.
    pub fn size(&self) -> usize {
        match self {
            Bound::Null => 0,
            Bound::Integer(_) | Bound::Real(_) => 8,
            Bound::Text(text) => text.len(),
        }
    }

    /// Bytes of the value used as a pattern (numbers are compared as their text).
    fn pattern_bytes(&self) -> usize {
        match self {
            Bound::Null => 0,
            Bound::Integer(value) => value.to_string().len(),
            Bound::Real(value) => value.to_string().len(),
            Bound::Text(text) => text.len(),
        }
    }
}

/// A limit a statement or an invocation would break.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Violation {
    #[error("{count} bound parameters (D1 allows at most {MAX_BOUND_PARAMETERS} per statement)")]
    TooManyParameters { count: usize },
    #[error("a LIKE/GLOB pattern of {bytes} bytes (D1 allows at most {MAX_PATTERN_BYTES})")]
    PatternTooLong { bytes: usize },
    #[error(
        "a statement of {bytes} bytes with its values (D1 allows at most {MAX_STATEMENT_BYTES})"
    )]
    StatementTooLarge { bytes: usize },
    #[error("query {count} of this invocation (D1 allows at most {MAX_QUERIES_PER_INVOCATION})")]
    TooManyQueries { count: u64 },
}

/// Checks one statement before it is sent: its parameters, its patterns and its size.
pub fn check_statement(sql: &str, values: &[Bound<'_>]) -> Result<(), Violation> {
    let scan = scan(sql);
    let count = scan.highest_parameter.max(values.len());
    if count > MAX_BOUND_PARAMETERS {
        return Err(Violation::TooManyParameters { count });
    }
    if let Some(bytes) = scan
        .patterns
        .iter()
        .map(|pattern| pattern.bytes(values))
        .max()
        .filter(|bytes| *bytes > MAX_PATTERN_BYTES)
    {
        return Err(Violation::PatternTooLong { bytes });
    }
    let bytes = statement_bytes(sql, values);
    if bytes > MAX_STATEMENT_BYTES {
        return Err(Violation::StatementTooLarge { bytes });
    }
    Ok(())
}

/// The size D1's statement limit is checked against: SQL text plus bound values.
pub fn statement_bytes(sql: &str, values: &[Bound<'_>]) -> usize {
    sql.len() + values.iter().map(Bound::size).sum::<usize>()
}

/// Checks that an invocation that has sent `used` queries may send `more`.
pub fn check_queries(used: u32, more: usize) -> Result<(), Violation> {
    let count = u64::from(used) + more as u64;
    if count > u64::from(MAX_QUERIES_PER_INVOCATION) {
        return Err(Violation::TooManyQueries { count });
    }
    Ok(())
}

/// How many values an `IN (...)` list may hold in a statement that binds `fixed` other parameters.
pub const fn in_list_capacity(fixed: usize) -> usize {
    MAX_BOUND_PARAMETERS.saturating_sub(fixed)
}

/// Cuts items of the given sizes, in order, into runs of at most `max_items` items whose sizes add
/// up to at most `max_bytes` (an item larger than `max_bytes` gets a run of its own, which the
/// statement check then refuses). Used to keep `IN (...)` lists under [`MAX_BOUND_PARAMETERS`]
/// and set-based statements (a JSON array of rows in one parameter) under [`MAX_STATEMENT_BYTES`].
pub fn runs_within(sizes: &[usize], max_items: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let max_items = max_items.max(1);
    let mut runs = Vec::new();
    let (mut start, mut total) = (0, 0usize);
    for (i, size) in sizes.iter().enumerate() {
        if i > start && (i - start == max_items || total + size > max_bytes) {
            runs.push(start..i);
            (start, total) = (i, 0);
        }
        total += size;
    }
    if start < sizes.len() {
        runs.push(start..sizes.len());
    }
    runs
}

/// A pattern operand: the terms of `LIKE <term> || <term> ...` that could be measured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Pattern {
    /// Bytes of the literals.
    literal_bytes: usize,
    /// 1-based indexes of the parameters.
    parameters: Vec<usize>,
}

impl Pattern {
    fn bytes(&self, values: &[Bound<'_>]) -> usize {
        self.literal_bytes
            + self
                .parameters
                .iter()
                .filter_map(|i| values.get(i - 1))
                .map(Bound::pattern_bytes)
                .sum::<usize>()
    }
}

#[derive(Debug, Default)]
struct Scan {
    /// The highest parameter index the SQL uses (SQLite numbers `?` after the highest so far).
    highest_parameter: usize,
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Parameter(usize),
    Literal(usize),
    Concat,
    Open,
    Other,
}

/// Reads the SQL's parameters and the operands of its `LIKE`/`GLOB` operators (and of the `like()`
/// and `glob()` functions), skipping string literals, quoted identifiers and comments.
fn scan(sql: &str) -> Scan {
    let tokens = tokenize(sql);
    let mut scan = Scan {
        highest_parameter: tokens
            .iter()
            .filter_map(|t| match t {
                Token::Parameter(i) => Some(*i),
                _ => None,
            })
            .max()
            .unwrap_or(0),
        patterns: Vec::new(),
    };
    for (i, token) in tokens.iter().enumerate() {
        let Token::Word(word) = token else { continue };
        if !word.eq_ignore_ascii_case("like") && !word.eq_ignore_ascii_case("glob") {
            continue;
        }
        // `like(pattern, text)` as a function, or `text LIKE pattern` as an operator.
        let start = match tokens.get(i + 1) {
            Some(Token::Open) => i + 2,
            _ => i + 1,
        };
        let mut pattern = Pattern::default();
        let mut rest = tokens[start.min(tokens.len())..].iter();
        while let Some(term) = rest.next() {
            match term {
                Token::Literal(bytes) => pattern.literal_bytes += bytes,
                Token::Parameter(index) => pattern.parameters.push(*index),
                _ => break,
            }
            if rest.next() != Some(&Token::Concat) {
                break;
            }
        }
        scan.patterns.push(pattern);
    }
    scan
}

fn tokenize(sql: &str) -> Vec<Token> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut highest = 0usize;
    let mut named: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            b'\'' => {
                let (length, end) = quoted(bytes, i, b'\'');
                tokens.push(Token::Literal(length));
                i = end;
            }
            b'"' | b'`' => {
                let (_, end) = quoted(bytes, i, c);
                tokens.push(Token::Word(String::new()));
                i = end;
            }
            b'[' => {
                i = sql[i..].find(']').map_or(bytes.len(), |n| i + n + 1);
                tokens.push(Token::Word(String::new()));
            }
            b'?' => {
                let digits = run(bytes, i + 1, |b| b.is_ascii_digit());
                let index = if digits > i + 1 {
                    sql[i + 1..digits].parse().unwrap_or(usize::MAX)
                } else {
                    highest.saturating_add(1)
                };
                highest = highest.max(index);
                tokens.push(Token::Parameter(index));
                i = digits;
            }
            b':' | b'@' | b'$' if bytes.get(i + 1).is_some_and(|b| is_word(*b)) => {
                let end = run(bytes, i + 1, is_word);
                let name = &sql[i..end];
                let index = match named.iter().position(|n| *n == name) {
                    Some(_) => highest,
                    None => {
                        named.push(name);
                        highest = highest.saturating_add(1);
                        highest
                    }
                };
                tokens.push(Token::Parameter(index));
                i = end;
            }
            b'|' if bytes.get(i + 1) == Some(&b'|') => {
                tokens.push(Token::Concat);
                i += 2;
            }
            b'(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            _ if is_word(c) => {
                let end = run(bytes, i, is_word);
                tokens.push(Token::Word(sql[i..end].to_string()));
                i = end;
            }
            _ => {
                tokens.push(Token::Other);
                // Whole UTF-8 characters, so that slicing stays on boundaries.
                i += sql[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
    }
    tokens
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The end of the run of bytes from `start` that satisfy `keep`.
fn run(bytes: &[u8], start: usize, keep: impl Fn(u8) -> bool) -> usize {
    let mut end = start;
    while end < bytes.len() && keep(bytes[end]) {
        end += 1;
    }
    end
}

/// A quoted token starting at `start`: its content's length (a doubled quote counts once) and
/// where it ends. An unterminated one runs to the end.
fn quoted(bytes: &[u8], start: usize, quote: u8) -> (usize, usize) {
    let mut i = start + 1;
    let mut length = 0;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                length += 1;
                i += 2;
                continue;
            }
            return (length, i + 1);
        }
        length += 1;
        i += 1;
    }
    (length, bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> String {
        let placeholders: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
        format!(
            "SELECT id FROM leads WHERE id IN ({})",
            placeholders.join(", ")
        )
    }

    #[test]
    fn at_most_a_hundred_parameters() {
        let values = vec![Bound::Text("x"); 101];
        assert_eq!(check_statement(&numbered(100), &values[..100]), Ok(()));
        assert_eq!(
            check_statement(&numbered(101), &values),
            Err(Violation::TooManyParameters { count: 101 })
        );
    }

    #[test]
    fn parameters_count_by_the_sql_and_by_the_values() {
        // A high index binds every lower one.
        assert_eq!(
            check_statement("SELECT ?101", &[]),
            Err(Violation::TooManyParameters { count: 101 })
        );
        // Anonymous and named parameters take the next index.
        let anonymous = format!("SELECT {}", vec!["?"; 101].join(", "));
        assert_eq!(
            check_statement(&anonymous, &[]),
            Err(Violation::TooManyParameters { count: 101 })
        );
        assert_eq!(scan("SELECT :a, :b, :a, @c, $d").highest_parameter, 4);
        // More values than placeholders are still bound.
        let values = vec![Bound::Null; 101];
        assert_eq!(
            check_statement("SELECT 1", &values),
            Err(Violation::TooManyParameters { count: 101 })
        );
    }

    #[test]
    fn question_marks_in_literals_identifiers_and_comments_are_not_parameters() {
        let sql = "SELECT '?5000', \"?7000\", [?8000], `?9000` -- ?9999\n /* ?1234 */ FROM t WHERE a = ?2";
        assert_eq!(scan(sql).highest_parameter, 2);
    }

    #[test]
    fn like_patterns_are_measured_from_their_values() {
        let sql = "SELECT * FROM leads WHERE name LIKE ?2 ESCAPE '\\' OR email NOT LIKE ?2";
        let fits = "%".repeat(50);
        let long = "%".repeat(51);
        assert_eq!(
            check_statement(sql, &[Bound::Text("org"), Bound::Text(&fits)]),
            Ok(())
        );
        assert_eq!(
            check_statement(sql, &[Bound::Text("org"), Bound::Text(&long)]),
            Err(Violation::PatternTooLong { bytes: 51 })
        );
        // Bytes, not characters.
        let wide = "é".repeat(26);
        assert_eq!(
            check_statement("SELECT 1 WHERE x GLOB ?1", &[Bound::Text(&wide)]),
            Err(Violation::PatternTooLong { bytes: 52 })
        );
    }

    #[test]
    fn literal_concatenated_and_function_patterns_are_measured() {
        let long_literal = format!("SELECT 1 WHERE x LIKE '{}'", "a".repeat(51));
        assert_eq!(
            check_statement(&long_literal, &[]),
            Err(Violation::PatternTooLong { bytes: 51 })
        );
        // A doubled quote is one byte of the pattern.
        let quoted = format!("SELECT 1 WHERE x LIKE '{}'", "''".repeat(50));
        assert_eq!(check_statement(&quoted, &[]), Ok(()));
        let concatenated = "SELECT 1 WHERE x LIKE '%' || ?1 || '%'";
        let text = "b".repeat(48);
        assert_eq!(check_statement(concatenated, &[Bound::Text(&text)]), Ok(()));
        let text = "b".repeat(49);
        assert_eq!(
            check_statement(concatenated, &[Bound::Text(&text)]),
            Err(Violation::PatternTooLong { bytes: 51 })
        );
        assert_eq!(
            check_statement("SELECT like(?1, name) FROM t", &[Bound::Text(&text)]),
            Ok(())
        );
        let long = "c".repeat(60);
        assert_eq!(
            check_statement("SELECT glob(?1, name) FROM t", &[Bound::Text(&long)]),
            Err(Violation::PatternTooLong { bytes: 60 })
        );
    }

    #[test]
    fn words_that_contain_like_and_columns_named_like_are_not_patterns() {
        let long = "d".repeat(80);
        assert_eq!(
            check_statement(
                "SELECT unlikely(x), likes FROM t WHERE likes = ?1",
                &[Bound::Text(&long)]
            ),
            Ok(())
        );
        // An operand that is not a literal or a parameter cannot be measured here.
        assert_eq!(
            check_statement(
                "SELECT 1 FROM t WHERE a LIKE b AND c = ?1",
                &[Bound::Text(&long)]
            ),
            Ok(())
        );
    }

    #[test]
    fn statements_are_at_most_100_kb_with_their_values() {
        let sql = "INSERT INTO t (a, b) VALUES (?1, ?2)";
        let room = MAX_STATEMENT_BYTES - sql.len() - 8;
        let text = "x".repeat(room);
        assert_eq!(
            check_statement(sql, &[Bound::Text(&text), Bound::Integer(7)]),
            Ok(())
        );
        let text = "x".repeat(room + 1);
        assert_eq!(
            check_statement(sql, &[Bound::Text(&text), Bound::Real(0.5)]),
            Err(Violation::StatementTooLarge {
                bytes: MAX_STATEMENT_BYTES + 1
            })
        );
        let long_sql = format!("SELECT '{}'", "y".repeat(MAX_STATEMENT_BYTES));
        assert!(matches!(
            check_statement(&long_sql, &[]),
            Err(Violation::StatementTooLarge { .. })
        ));
    }

    #[test]
    fn an_invocation_sends_at_most_1000_queries() {
        assert_eq!(check_queries(0, 1000), Ok(()));
        assert_eq!(check_queries(999, 1), Ok(()));
        assert_eq!(
            check_queries(1000, 1),
            Err(Violation::TooManyQueries { count: 1001 })
        );
        assert_eq!(
            check_queries(990, 20),
            Err(Violation::TooManyQueries { count: 1010 })
        );
        assert_eq!(check_queries(5, 0), Ok(()));
    }

    #[test]
    fn in_lists_leave_room_for_the_other_parameters() {
        assert_eq!(in_list_capacity(1), 99);
        assert_eq!(in_list_capacity(0), 100);
        assert_eq!(in_list_capacity(200), 0);
    }

    #[test]
    fn runs_keep_order_and_stay_within_the_capacity() {
        assert_eq!(runs_within(&[], 5, 10), Vec::<Range<usize>>::new());
        assert_eq!(runs_within(&[4, 4, 4, 4], 5, 10), vec![0..2, 2..4]);
        assert_eq!(runs_within(&[10, 1, 9, 1], 5, 10), vec![0..1, 1..3, 3..4]);
        // Too large alone: a run of its own.
        assert_eq!(runs_within(&[3, 25, 3], 5, 10), vec![0..1, 1..2, 2..3]);
        // At most `max_items` per run.
        assert_eq!(runs_within(&[1; 7], 3, 100), vec![0..3, 3..6, 6..7]);
        let runs = runs_within(&[1; 250], in_list_capacity(1), MAX_STATEMENT_BYTES);
        assert_eq!(runs, vec![0..99, 99..198, 198..250]);
    }

    #[test]
    fn the_scanner_survives_any_text() {
        for sql in [
            "'",
            "\"",
            "[",
            "/*",
            "--",
            "?",
            "?99999999999999999999999 ?",
            "LIKE",
            "like(",
            "é?1",
            "x LIKE ?1 ||",
            ":a ?",
        ] {
            let _ = check_statement(sql, &[Bound::Text("v")]);
        }
    }
}
