//! Code patterns for bulk-generated coupons, and the batch definition.
//!
//! A pattern is upper-cased; `#` is a digit, `?` a character of
//! [`ALPHABET`] (no look-alikes: no 0/O, 1/I/L), anything else (letters,
//! digits, `-`, `_`) is literal. Every code a pattern produces is a
//! well-formed coupon code. A pattern must hold at least [`MARGIN`] times the
//! requested count, so random codes rarely collide and a batch never has to
//! search a nearly exhausted space.

use chrono::{DateTime, Utc};
use rand::Rng;

use super::coupon::{self, MAX_CODE_LEN, MIN_CODE_LEN};
use super::validation::{Invalid, Window};

/// What `?` draws from: digits 2-9 and letters without I, L, O.
pub const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Digits `#` draws from.
const DIGITS: &[u8] = b"0123456789";
/// How many times the requested count a pattern's space must hold.
pub const MARGIN: u128 = 100;
/// Most codes in one batch.
pub const MAX_COUNT: i32 = 1_000_000;

/// One position of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Literal(u8),
    Digit,
    Letter,
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodePattern {
    /// Upper-cased, as stored on the batch.
    text: String,
    slots: Vec<Slot>,
}

impl CodePattern {
    /// Parses and checks a pattern; errors name `field`.
    pub fn parse(field: &str, pattern: &str) -> Result<Self, Invalid> {
        let text = pattern.trim().to_ascii_uppercase();
        if !(MIN_CODE_LEN..=MAX_CODE_LEN).contains(&text.len()) {
            return Err(Invalid::new(
                field,
                format!("must be {MIN_CODE_LEN} to {MAX_CODE_LEN} characters"),
            ));
        }
        let slots: Vec<Slot> = text
            .bytes()
            .map(|b| match b {
                b'#' => Ok(Slot::Digit),
                b'?' => Ok(Slot::Letter),
                b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => Ok(Slot::Literal(b)),
                _ => Err(Invalid::new(
                    field,
                    "may hold only '#' (a digit), '?' (a letter or digit), letters, digits, '-' and '_'",
                )),
            })
            .collect::<Result<_, _>>()?;
        if matches!(slots.first(), Some(Slot::Literal(b'-' | b'_'))) {
            return Err(Invalid::new(field, "must start with a letter, a digit, '#' or '?'"));
        }
        if slots.iter().all(|s| matches!(s, Slot::Literal(_))) {
            return Err(Invalid::new(field, "must hold at least one '#' or '?'"));
        }
        Ok(Self { text, slots })
    }

    /// The pattern as stored (upper-case).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How many distinct codes the pattern can produce (saturating).
    pub fn space(&self) -> u128 {
        self.slots.iter().fold(1u128, |n, slot| match slot {
            Slot::Literal(_) => n,
            Slot::Digit => n.saturating_mul(DIGITS.len() as u128),
            Slot::Letter => n.saturating_mul(ALPHABET.len() as u128),
        })
    }

    /// One random code (use a cryptographically secure `rng`).
    pub fn generate(&self, rng: &mut impl Rng) -> String {
        let bytes: Vec<u8> = self
            .slots
            .iter()
            .map(|slot| match *slot {
                Slot::Literal(b) => b,
                Slot::Digit => DIGITS[rng.random_range(0..DIGITS.len())],
                Slot::Letter => ALPHABET[rng.random_range(0..ALPHABET.len())],
            })
            .collect();
        // Every slot is ASCII.
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Whether `code` is one this pattern can produce.
    pub fn matches(&self, code: &str) -> bool {
        code.len() == self.slots.len()
            && code.bytes().zip(&self.slots).all(|(b, slot)| match *slot {
                Slot::Literal(l) => b == l,
                Slot::Digit => DIGITS.contains(&b),
                Slot::Letter => ALPHABET.contains(&b),
            })
    }
}

/// A batch as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchDraft {
    pub count: i32,
    pub pattern: String,
    pub usage_limit: Option<i32>,
    pub usage_limit_per_customer: Option<i32>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A valid batch definition: every generated coupon shares its limits and window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchDefinition {
    pub count: i32,
    pub pattern: CodePattern,
    pub usage_limit: Option<i32>,
    pub usage_limit_per_customer: Option<i32>,
    pub window: Window,
}

impl BatchDefinition {
    /// Checks the rules; errors name fields relative to the draft (the
    /// resolver puts them under its argument).
    pub fn new(draft: &BatchDraft) -> Result<Self, Invalid> {
        if !(1..=MAX_COUNT).contains(&draft.count) {
            return Err(Invalid::new("count", format!("must be between 1 and {MAX_COUNT}")));
        }
        let pattern = CodePattern::parse("pattern", &draft.pattern)?;
        let space = pattern.space();
        let needed = MARGIN * draft.count.unsigned_abs() as u128;
        if space < needed {
            return Err(Invalid::new(
                "pattern",
                format!(
                    "the pattern can produce {space} codes; {} codes need a space of at least {needed} \
                     ({MARGIN} times the count): add '#' or '?' positions",
                    draft.count
                ),
            ));
        }
        let (usage_limit, usage_limit_per_customer, window) = coupon::terms(
            draft.usage_limit,
            draft.usage_limit_per_customer,
            draft.starts_at,
            draft.expires_at,
        )?;
        Ok(Self {
            count: draft.count,
            pattern,
            usage_limit,
            usage_limit_per_customer,
            window,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_valid_code(code: &str) -> bool {
        coupon::normalize_code("code", code).is_ok_and(|c| c == code)
    }

    fn draft(count: i32, pattern: &str) -> BatchDraft {
        BatchDraft {
            count,
            pattern: pattern.into(),
            usage_limit: Some(1),
            usage_limit_per_customer: None,
            starts_at: None,
            expires_at: None,
        }
    }

    #[test]
    fn the_alphabet_has_no_look_alikes() {
        assert_eq!(ALPHABET.len(), 31);
        for b in b"01OIL" {
            assert!(!ALPHABET.contains(b), "{}", *b as char);
        }
    }

    #[test]
    fn patterns_are_upper_cased_and_their_space_counted() {
        let p = CodePattern::parse("p", " summer-??##").unwrap();
        assert_eq!(p.as_str(), "SUMMER-??##");
        assert_eq!(p.space(), 31 * 31 * 10 * 10);
        assert_eq!(CodePattern::parse("p", &"?".repeat(64)).unwrap().space(), u128::MAX);
    }

    #[test]
    fn malformed_patterns_are_rejected_with_the_field() {
        for bad in [
            "",
            "#",
            "AB",
            "SUMMER",
            "-####",
            "AB CD##",
            "ÄB##",
            "A*##",
            &"#".repeat(65),
        ] {
            let err = CodePattern::parse("pattern", bad).unwrap_err();
            assert_eq!(err.field, "pattern", "{bad:?}");
        }
    }

    #[test]
    fn generated_codes_match_the_pattern_and_are_valid_codes() {
        let p = CodePattern::parse("p", "X-??#_?#").unwrap();
        let mut rng = rand::rng();
        for _ in 0..2_000 {
            let code = p.generate(&mut rng);
            assert!(p.matches(&code), "{code}");
            assert!(is_valid_code(&code), "{code}");
        }
        assert!(!p.matches("X-AA1_A"), "too short");
        assert!(!p.matches("X-0A1_A1"), "0 is not in the alphabet");
        assert!(!p.matches("Y-AA1_A1"), "literal differs");
    }

    #[test]
    fn the_space_must_hold_a_hundred_times_the_count() {
        // 1,000 codes: ten at most.
        assert!(BatchDefinition::new(&draft(10, "AB-###")).is_ok());
        let err = BatchDefinition::new(&draft(11, "AB-###")).unwrap_err();
        assert_eq!(err.field, "pattern");
        assert!(err.message.contains("1000 codes"), "{}", err.message);
        assert!(err.message.contains("1100"), "{}", err.message);
        // A million codes need 10^8: 8 digits, or 6 '?' (31^6 = 887,503,681).
        assert!(BatchDefinition::new(&draft(1_000_000, "########")).is_ok());
        assert!(BatchDefinition::new(&draft(1_000_000, "#######")).is_err());
        assert!(BatchDefinition::new(&draft(1_000_000, "??????")).is_ok());
    }

    #[test]
    fn counts_and_limits_are_bounded() {
        for (count, field) in [(0, "count"), (-5, "count"), (1_000_001, "count")] {
            assert_eq!(
                BatchDefinition::new(&draft(count, "????????")).unwrap_err().field,
                field
            );
        }
        let mut d = draft(5, "????????");
        d.usage_limit = Some(0);
        assert_eq!(BatchDefinition::new(&d).unwrap_err().field, "usageLimit");
    }
}
