//! DRF's page-number pagination envelope, with links that keep the other parameters.
//!
//! [`Paginated`] is the envelope's schema and its serialization; [`json_page`] writes the
//! same bytes straight from a page's values, for the lists whose items have a writer of
//! their own (no DTO per item).

use std::fmt::Display;
use std::io::{self, Write as _};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::pagination::Page;
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::ListQuery;

/// `{"count", "next", "previous", "page_count", "results"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paginated<T> {
    /// How many rows the whole list has.
    pub count: u64,
    /// The next page's link, or `null` on the last page.
    pub next: Option<String>,
    /// The previous page's link, or `null` on the first page.
    pub previous: Option<String>,
    /// How many pages there are (at least one).
    pub page_count: u64,
    /// The rows of this page.
    pub results: Vec<T>,
}

impl<T> Paginated<T> {
    /// The envelope of `page`, with links built from the request's path and query.
    pub fn new<U>(page: Page<U>, query: &ListQuery, represent: impl FnMut(U) -> T) -> Self {
        let (next, previous) = page_links(&page, query);
        let count = page.total;
        let page_count = page.page_count();
        Self {
            count,
            next,
            previous,
            page_count,
            results: page.items.into_iter().map(represent).collect(),
        }
    }
}

/// The `next` and `previous` links of `page`.
fn page_links<U>(page: &Page<U>, query: &ListQuery) -> (Option<String>, Option<String>) {
    let number = page.request.page();
    let next = page
        .has_next()
        .then(|| link(query, "page", Some(number + 1)));
    // As DRF does, the link to page 1 leaves `page` out.
    let previous = page
        .has_previous()
        .then(|| link(query, "page", (number > 2).then(|| number - 1)));
    (next, previous)
}

/// The envelope's bytes besides its links and items, with room for its numbers.
const ENVELOPE_SIZE: usize = 128;

/// The `200` answer that `Json(Paginated::new(page, query, represent))` gives, written
/// straight from the page's values: `write_item` writes the JSON of one item as
/// `represent`'s value serializes, and `item_size` guesses its length, so that the body
/// is reserved once.
pub fn json_page<U>(
    page: &Page<U>,
    query: &ListQuery,
    item_size: impl Fn(&U) -> usize,
    write_item: impl FnMut(&mut Vec<u8>, &U) -> io::Result<()>,
) -> Response {
    json_response(
        StatusCode::OK,
        page_json(page, query, item_size, write_item),
    )
}

/// The body of [`json_page`].
fn page_json<U>(
    page: &Page<U>,
    query: &ListQuery,
    item_size: impl Fn(&U) -> usize,
    mut write_item: impl FnMut(&mut Vec<u8>, &U) -> io::Result<()>,
) -> io::Result<Vec<u8>> {
    let (next, previous) = page_links(page, query);
    let links_size =
        next.as_ref().map_or(0, String::len) + previous.as_ref().map_or(0, String::len);
    let items_size: usize = page.items.iter().map(item_size).sum();
    let mut out = Vec::with_capacity(ENVELOPE_SIZE + links_size + items_size + page.items.len());
    out.extend_from_slice(b"{\"count\":");
    write!(out, "{}", page.total)?;
    out.extend_from_slice(b",\"next\":");
    write_optional_str(&mut out, next.as_deref())?;
    out.extend_from_slice(b",\"previous\":");
    write_optional_str(&mut out, previous.as_deref())?;
    out.extend_from_slice(b",\"page_count\":");
    write!(out, "{}", page.page_count())?;
    out.extend_from_slice(b",\"results\":[");
    for (index, item) in page.items.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_item(&mut out, item)?;
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// `status` with a JSON body (`application/json`, as `axum::Json` answers), or, when the
/// body could not be written, `500` with the error as text (as `axum::Json` answers then).
pub fn json_response(status: StatusCode, body: io::Result<Vec<u8>>) -> Response {
    match body {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            Body::from(body),
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            error.to_string(),
        )
            .into_response(),
    }
}

/// A JSON string, escaped as `serde_json` escapes it.
///
/// # Errors
/// Those of `out`.
pub fn write_str(out: &mut Vec<u8>, value: &str) -> io::Result<()> {
    serde_json::to_writer(out, value).map_err(io::Error::from)
}

/// A JSON string, or `null`.
fn write_optional_str(out: &mut Vec<u8>, value: Option<&str>) -> io::Result<()> {
    match value {
        Some(value) => write_str(out, value),
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

/// `true` or `false`.
pub fn write_bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

/// The request's link with the parameter `name` set to `value` (or removed), parameters
/// sorted by name as DRF's `replace_query_param` does.
pub(crate) fn link(query: &ListQuery, name: &str, value: Option<impl Display>) -> String {
    let value = value.map(|value| value.to_string());
    let mut pairs: Vec<(&str, &str)> = query
        .pairs
        .iter()
        .filter(|(key, _)| key != name)
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .chain(value.as_deref().map(|value| (name, value)))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    if pairs.is_empty() {
        return query.path.clone();
    }
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    format!("{}?{}", query.path, serializer.extend_pairs(pairs).finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::pagination::PageRequest;

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        ListQuery {
            path: "/organizations/".to_owned(),
            pairs: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn page(number: u64, total: u64) -> Page<u64> {
        Page {
            items: vec![],
            total,
            request: PageRequest::new(number, 50),
        }
    }

    #[test]
    fn the_middle_page_links_both_ways() {
        let envelope = Paginated::new(page(2, 5022), &query(&[("page", "2")]), |x| x);

        assert_eq!(envelope.next.as_deref(), Some("/organizations/?page=3"));
        assert_eq!(envelope.previous.as_deref(), Some("/organizations/"));
        assert_eq!(envelope.page_count, 101);
        assert_eq!(envelope.count, 5022);
    }

    #[test]
    fn other_parameters_are_kept_and_sorted() {
        let envelope = Paginated::new(
            page(3, 500),
            &query(&[("status", "pending"), ("page", "3"), ("page_size", "50")]),
            |x| x,
        );

        assert_eq!(
            envelope.next.as_deref(),
            Some("/organizations/?page=4&page_size=50&status=pending")
        );
        assert_eq!(
            envelope.previous.as_deref(),
            Some("/organizations/?page=2&page_size=50&status=pending")
        );
    }

    #[test]
    fn the_ends_have_no_links() {
        let envelope = Paginated::new(page(1, 0), &query(&[]), |x| x);

        assert_eq!(envelope.next, None);
        assert_eq!(envelope.previous, None);
        assert_eq!(envelope.page_count, 1);
    }

    /// The body `json_page` writes for `page`, and the one `Paginated` serializes to.
    fn both_bodies(page: Page<u64>, query: &ListQuery) -> io::Result<(String, String)> {
        let written = page_json(&page, query, |_| 1, |out, item| write!(out, "{item}"))?;
        let serialized = serde_json::to_string(&Paginated::new(page, query, |x| x))?;
        Ok((String::from_utf8_lossy(&written).into_owned(), serialized))
    }

    #[test]
    fn a_written_page_is_the_serialized_envelope() -> io::Result<()> {
        let queries = [
            query(&[]),
            query(&[("page", "2")]),
            query(&[("status", "pending\"\\"), ("page", "3"), ("page_size", "2")]),
        ];
        for query in &queries {
            for (number, size, total) in [(1, 50, 0), (1, 50, 3), (2, 2, 5), (3, 2, 5), (1, 2, 5)] {
                let first = (number - 1) * size;
                let items = (first..total.min(first + size)).collect();
                let page = Page {
                    items,
                    total,
                    request: PageRequest::new(number, size),
                };
                let (written, serialized) = both_bodies(page, query)?;
                assert_eq!(written, serialized, "page {number} of {total}");
            }
        }
        Ok(())
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() -> io::Result<()> {
        let text = "a \"quote\", a \\, a\nnew line, \u{1} \u{7f} \u{2028} é ☃ 😀 </script>";
        let mut out = Vec::new();
        write_str(&mut out, text)?;
        write_optional_str(&mut out, None)?;
        write_bool(&mut out, true);

        let expected = serde_json::to_string(text).map_err(io::Error::from)? + "nulltrue";
        assert_eq!(String::from_utf8_lossy(&out), expected);
        Ok(())
    }

    #[test]
    fn values_are_percent_encoded() {
        let envelope = Paginated::new(page(1, 120), &query(&[("address", "a+b@x.io")]), |x| x);

        assert_eq!(
            envelope.next.as_deref(),
            Some("/organizations/?address=a%2Bb%40x.io&page=2")
        );
    }
}
