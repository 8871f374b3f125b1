//! Parsed documents, by their text.
//!
//! async-graphql parses every request's document anew, and its parser is
//! the costliest step of a small preview (some 35 µs of a 200 µs request).
//! A checkout sends the same few documents over and over with different
//! variables, so each replica keeps the documents it parsed, bounded by the
//! total length of their text, and hands each request a copy. A preview
//! document is compiled as well, once ([`PreviewPlan`]).

use std::sync::Arc;

use async_graphql::Request;
use async_graphql::parser::types::ExecutableDocument;

use super::fast_preview::PreviewPlan;

/// Total length of the cached documents' text: a few thousand documents.
const MAX_TEXT_BYTES: u64 = 1 << 20;

/// The documents this replica parsed.
pub struct Documents(moka::sync::Cache<String, Arc<Parsed>>);

/// One document, parsed.
pub struct Parsed {
    pub document: ExecutableDocument,
    /// Its plan, when it is a preview that can be served without the executor.
    pub preview: Option<PreviewPlan>,
}

impl Default for Documents {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(MAX_TEXT_BYTES)
                .weigher(|text: &String, _| u32::try_from(text.len()).unwrap_or(u32::MAX))
                .build(),
        )
    }
}

impl Documents {
    /// The document `query` holds, parsed now unless it was before; None
    /// when it does not parse (nothing is kept: execution reports the error).
    pub fn get(&self, query: &str) -> Option<Arc<Parsed>> {
        if let Some(parsed) = self.0.get(query) {
            return Some(parsed);
        }
        let document = async_graphql::parser::parse_query(query).ok()?;
        let preview = PreviewPlan::compile(&document);
        let parsed = Arc::new(Parsed { document, preview });
        self.0.insert(query.to_owned(), parsed.clone());
        Some(parsed)
    }

    /// Gives `request` a copy of its parsed document, if it parses, and
    /// returns the document.
    pub fn prepare(&self, request: &mut Request) -> Option<Arc<Parsed>> {
        let parsed = self.get(&request.query)?;
        request.set_parsed_query(parsed.document.clone());
        Some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::Request;

    use super::Documents;

    #[test]
    fn a_document_is_parsed_once_and_a_broken_one_is_left_for_execution() {
        let documents = Documents::default();
        let text = "query($c: Int) { a(b: $c) { d } }";
        let mut first = Request::new(text);
        documents.prepare(&mut first);
        assert!(documents.0.contains_key(text), "the parsed document is kept");
        let mut second = Request::new(text);
        documents.prepare(&mut second);
        let (first, second) = (
            first.parsed_query().expect("parsed"),
            second.parsed_query().expect("copied"),
        );
        assert_eq!(format!("{first:?}"), format!("{second:?}"));

        let mut broken = Request::new("{ a(");
        documents.prepare(&mut broken);
        assert!(!documents.0.contains_key("{ a("), "a syntax error is not kept");
        assert!(broken.parsed_query().is_err(), "execution reports it");
    }
}
