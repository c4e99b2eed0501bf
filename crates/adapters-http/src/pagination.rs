//! DRF's page-number pagination envelope, with links that keep the other parameters.

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
        let number = page.request.page();
        let next = page.has_next().then(|| link(query, Some(number + 1)));
        // As DRF does, the link to page 1 leaves `page` out.
        let previous = page
            .has_previous()
            .then(|| link(query, (number > 2).then(|| number - 1)));
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

/// The request's link with `page` replaced (or removed), parameters sorted by name as
/// DRF's `replace_query_param` does.
fn link(query: &ListQuery, page: Option<u64>) -> String {
    let mut pairs: Vec<(&str, String)> = query
        .pairs
        .iter()
        .filter(|(key, _)| key != "page")
        .map(|(key, value)| (key.as_str(), value.clone()))
        .collect();
    if let Some(page) = page {
        pairs.push(("page", page.to_string()));
    }
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    if pairs.is_empty() {
        return query.path.clone();
    }
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in &pairs {
        serializer.append_pair(key, value);
    }
    format!("{}?{}", query.path, serializer.finish())
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

    #[test]
    fn values_are_percent_encoded() {
        let envelope = Paginated::new(page(1, 120), &query(&[("address", "a+b@x.io")]), |x| x);

        assert_eq!(
            envelope.next.as_deref(),
            Some("/organizations/?address=a%2Bb%40x.io&page=2")
        );
    }
}
