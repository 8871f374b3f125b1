//! Campaigns: a name, a window and a status with a fixed set of moves.

use chrono::{DateTime, Utc};

use super::validation::{self as v, Invalid, Window};

/// A campaign's lifecycle state (DESIGN.md 3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignStatus {
    /// Being prepared; its promotions do not apply.
    Draft,
    /// Its promotions apply inside its window.
    Active,
    /// Temporarily off.
    Paused,
    /// Over for good.
    Ended,
}

impl CampaignStatus {
    /// Whether moving from `self` to `next` is allowed:
    /// DRAFT -> ACTIVE | ENDED, ACTIVE <-> PAUSED, ACTIVE | PAUSED -> ENDED.
    pub fn can_move_to(self, next: CampaignStatus) -> bool {
        use CampaignStatus::*;
        matches!(
            (self, next),
            (Draft, Active) | (Draft, Ended) | (Active, Paused) | (Paused, Active) | (Active, Ended) | (Paused, Ended)
        )
    }
}

/// A campaign as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignDraft {
    /// Shown in the admin SPA.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Start of the window; none: open.
    pub starts_at: Option<DateTime<Utc>>,
    /// End of the window; none: open.
    pub ends_at: Option<DateTime<Utc>>,
}

/// A valid campaign definition (everything but identity and status).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignDefinition {
    /// Trimmed, 1..200 characters.
    pub name: String,
    /// Trimmed, at most 2000 characters.
    pub description: Option<String>,
    /// When its promotions may apply.
    #[serde(flatten)]
    pub window: Window,
}

impl CampaignDefinition {
    /// Checks the rules; errors name fields relative to the draft (the
    /// resolver puts them under its argument).
    pub fn new(draft: &CampaignDraft) -> Result<Self, Invalid> {
        Ok(Self {
            name: v::name("name", &draft.name)?,
            description: v::description("description", draft.description.as_deref())?,
            window: Window::new("endsAt", draft.starts_at, draft.ends_at)?,
        })
    }
}

/// A stored campaign.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Campaign {
    /// Time-ordered (UUIDv7).
    pub id: uuid::Uuid,
    /// What it is.
    #[serde(flatten)]
    pub definition: CampaignDefinition,
    /// Where it is in its lifecycle.
    pub status: CampaignStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::CampaignStatus::*;

    #[test]
    fn only_the_designed_moves_are_allowed() {
        let all = [Draft, Active, Paused, Ended];
        let allowed: Vec<_> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_move_to(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Draft, Active),
                (Draft, Ended),
                (Active, Paused),
                (Active, Ended),
                (Paused, Active),
                (Paused, Ended)
            ]
        );
    }
}
