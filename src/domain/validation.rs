//! Field-level validation: the error type and the small checks every
//! constructor shares. The field is the input path the client sent
//! (e.g. `input.action.percentageOff.basisPoints`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};

/// The largest money amount accepted anywhere (10^12 minor units), so that
/// amount x quantity can never overflow an i64.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// Longest name (campaign, promotion).
pub const MAX_NAME_CHARS: usize = 200;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Longest identifier of a product, category, brand, segment or customer.
pub const MAX_ID_CHARS: usize = 200;
/// Most values in one target list or segment list.
pub const MAX_LIST_LEN: usize = 1_000;

/// A value that breaks a rule, with the input path that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The offending input path, e.g. `input.endsAt`.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl Invalid {
    /// An error on `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error with its field placed under `parent`: a check of one
    /// item names fields relative to it, and the path is only built for an
    /// error.
    pub fn under(self, parent: &str) -> Self {
        Self {
            field: path(parent, &self.field),
            ..self
        }
    }
}

/// Joins an input path and a child name: `path("input", "name")` is `input.name`.
pub fn path(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// A trimmed, non-empty name of at most [`MAX_NAME_CHARS`] characters.
pub fn name(field: &str, value: &str) -> Result<String, Invalid> {
    bounded_text(field, value, MAX_NAME_CHARS)
}

/// An optional description: trimmed, empty becomes none, bounded.
pub fn description(field: &str, value: Option<&str>) -> Result<Option<String>, Invalid> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) if text.chars().count() > MAX_DESCRIPTION_CHARS => Err(Invalid::new(
            field,
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        )),
        Some(text) => Ok(Some(text.to_owned())),
    }
}

/// A trimmed identifier (product, category, brand, segment, customer, order).
pub fn identifier(field: &str, value: &str) -> Result<String, Invalid> {
    bounded_text(field, value, MAX_ID_CHARS)
}

fn bounded_text(field: &str, value: &str, max: usize) -> Result<String, Invalid> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(Invalid::new(field, format!("must be at most {max} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// A list of identifiers: each valid, duplicates removed, order kept, bounded.
pub fn identifiers(field: &str, values: &[String]) -> Result<Vec<String>, Invalid> {
    if values.len() > MAX_LIST_LEN {
        return Err(Invalid::new(field, format!("must hold at most {MAX_LIST_LEN} values")));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    // By the trimmed text `identifier` keeps: one look-up a value, not a
    // scan of those kept (a list of a thousand would cost half a million
    // comparisons).
    let mut seen: HashSet<&str> = HashSet::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let id = identifier(field, value).map_err(|e| Invalid::new(format!("{field}[{i}]"), e.message))?;
        if seen.insert(value.trim()) {
            out.push(id);
        }
    }
    Ok(out)
}

/// A money amount in minor units: 1..=[`MAX_AMOUNT`].
pub fn amount(field: &str, value: i64) -> Result<i64, Invalid> {
    if (1..=MAX_AMOUNT).contains(&value) {
        Ok(value)
    } else {
        Err(Invalid::new(
            field,
            format!("must be between 1 and {MAX_AMOUNT} minor units"),
        ))
    }
}

/// A count that must be at least one (limits, quantities, thresholds).
pub fn positive(field: &str, value: i32) -> Result<i32, Invalid> {
    if value >= 1 {
        Ok(value)
    } else {
        Err(Invalid::new(field, "must be at least 1"))
    }
}

/// Basis points: 1..=10000 (0.01 % to 100 %).
pub fn basis_points(field: &str, value: i32) -> Result<i32, Invalid> {
    if (1..=10_000).contains(&value) {
        Ok(value)
    } else {
        Err(Invalid::new(field, "must be between 1 and 10000 basis points"))
    }
}

/// A rating bound: a finite number from 0 to 5.
pub fn rating(field: &str, value: f64) -> Result<f64, Invalid> {
    if value.is_finite() && (0.0..=5.0).contains(&value) {
        Ok(value)
    } else {
        Err(Invalid::new(field, "must be a number from 0 to 5"))
    }
}

/// An ISO 4217 code: three ASCII letters, stored upper-case.
pub fn currency(field: &str, value: &str) -> Result<String, Invalid> {
    let code = value.trim().to_ascii_uppercase();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(Invalid::new(
            field,
            "must be an ISO 4217 code of three letters, e.g. EUR",
        ))
    }
}

/// A validity window `[starts_at, ends_at)`: either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// First instant inside the window; none: since always.
    pub starts_at: Option<DateTime<Utc>>,
    /// First instant after the window; none: for ever.
    pub ends_at: Option<DateTime<Utc>>,
}

impl Window {
    /// A window whose end, when both are set, is after its start.
    pub fn new(
        end_field: &str,
        starts_at: Option<DateTime<Utc>>,
        ends_at: Option<DateTime<Utc>>,
    ) -> Result<Self, Invalid> {
        match (starts_at, ends_at) {
            (Some(start), Some(end)) if end <= start => Err(Invalid::new(end_field, "must be after the start")),
            _ => Ok(Self { starts_at, ends_at }),
        }
    }

    /// Whether `now` is inside the window.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.starts_at.is_none_or(|s| s <= now) && self.ends_at.is_none_or(|e| now < e)
    }

    /// Whether the window has not started at `now`.
    pub fn is_before(&self, now: DateTime<Utc>) -> bool {
        self.starts_at.is_some_and(|s| now < s)
    }

    /// Whether the window is over at `now`.
    pub fn is_after(&self, now: DateTime<Utc>) -> bool {
        self.ends_at.is_some_and(|e| e <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_points_accept_one_to_ten_thousand_only() {
        assert!(basis_points("f", 0).is_err());
        assert_eq!(basis_points("f", 1), Ok(1));
        assert_eq!(basis_points("f", 10_000), Ok(10_000));
        assert_eq!(basis_points("f", 10_001).unwrap_err().field, "f");
    }

    #[test]
    fn a_window_that_ends_before_it_starts_is_rejected_on_its_end() {
        let t = Utc::now();
        let err = Window::new("input.endsAt", Some(t), Some(t)).unwrap_err();
        assert_eq!(err.field, "input.endsAt");
        assert!(Window::new("e", Some(t), None).is_ok());
    }

    #[test]
    fn a_window_contains_its_start_but_not_its_end() {
        let t = Utc::now();
        let end = t + chrono::Duration::hours(1);
        let w = Window::new("e", Some(t), Some(end)).unwrap();
        assert!(w.contains(t));
        assert!(!w.contains(end));
        assert!(w.is_after(end));
        assert!(w.is_before(t - chrono::Duration::seconds(1)));
    }

    #[test]
    fn identifiers_are_trimmed_deduplicated_and_bounded() {
        let ids = identifiers("f", &[" a ".into(), "a".into(), "b".into()]).unwrap();
        assert_eq!(ids, vec!["a", "b"]);
        let kept_in_order = identifiers("f", &["b".into(), "a ".into(), " b".into(), "a".into()]).unwrap();
        assert_eq!(kept_in_order, vec!["b", "a"]);
        assert_eq!(identifiers("f", &["  ".into()]).unwrap_err().field, "f[0]");
    }

    #[test]
    fn currencies_are_three_letters_upper_cased() {
        assert_eq!(currency("c", "eur"), Ok("EUR".to_owned()));
        assert!(currency("c", "EURO").is_err());
        assert!(currency("c", "E1R").is_err());
    }
}
