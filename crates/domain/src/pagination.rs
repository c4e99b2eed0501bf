//! Page requests and pages (CONTRACT §2, "Lists are paginated").

/// The page size when none (or a bad one) is asked for.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// The largest page size; larger requests are capped.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// `?page=0`, a negative or non-numeric page, or a page past the end (→ 404 "Invalid page.").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid page")]
pub struct InvalidPage;

/// A validated page request: page from 1, size from 1 to 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    page: u64,
    size: u64,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            size: DEFAULT_PAGE_SIZE,
        }
    }
}

impl PageRequest {
    /// Reads `?page=` and `?page_size=` as DRF's `PageNumberPagination` does: a bad
    /// `page_size` is ignored, a large one capped; a bad page is an error.
    ///
    /// # Errors
    /// `InvalidPage` for a page that is not a positive integer.
    pub fn from_query(page: Option<&str>, page_size: Option<&str>) -> Result<Self, InvalidPage> {
        let page = match page {
            None => 1,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(page) if page >= 1 => page,
                _ => return Err(InvalidPage),
            },
        };
        let size = page_size
            .and_then(|raw| raw.trim().parse::<u64>().ok())
            .filter(|size| *size >= 1)
            .map_or(DEFAULT_PAGE_SIZE, |size| size.min(MAX_PAGE_SIZE));
        Ok(Self { page, size })
    }

    /// A request for a given page and size (size capped to 1 to 1000).
    #[must_use]
    pub fn new(page: u64, size: u64) -> Self {
        Self {
            page: page.max(1),
            size: size.clamp(1, MAX_PAGE_SIZE),
        }
    }

    /// The page number, from 1.
    #[must_use]
    pub fn page(self) -> u64 {
        self.page
    }

    /// The page size.
    #[must_use]
    pub fn size(self) -> u64 {
        self.size
    }

    /// How many rows come before this page.
    #[must_use]
    pub fn offset(self) -> u64 {
        (self.page - 1).saturating_mul(self.size)
    }

    /// How many pages `total` rows make: at least one, an empty list being page 1.
    #[must_use]
    pub fn page_count(self, total: u64) -> u64 {
        total.div_ceil(self.size).max(1)
    }

    /// Checks that this page exists among `total` rows.
    ///
    /// # Errors
    /// `InvalidPage` for a page past the end.
    pub fn check(self, total: u64) -> Result<(), InvalidPage> {
        if self.page > self.page_count(total) {
            Err(InvalidPage)
        } else {
            Ok(())
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// How many rows the whole list has.
    pub total: u64,
    /// The page that was asked for.
    pub request: PageRequest,
}

impl<T> Page<T> {
    /// How many pages the list has.
    #[must_use]
    pub fn page_count(&self) -> u64 {
        self.request.page_count(self.total)
    }

    /// Whether a page follows this one.
    #[must_use]
    pub fn has_next(&self) -> bool {
        self.request.page() < self.page_count()
    }

    /// Whether a page comes before this one.
    #[must_use]
    pub fn has_previous(&self) -> bool {
        self.request.page() > 1
    }

    /// Transforms the rows.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            request: self.request,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_query_is_page_1_of_50() {
        let request = PageRequest::from_query(None, None).expect("valid");

        assert_eq!((request.page(), request.size()), (1, 50));
    }

    #[test]
    fn page_0_negative_or_non_numeric_is_invalid() {
        for bad in ["0", "-1", "abc", "1.5", ""] {
            assert_eq!(
                PageRequest::from_query(Some(bad), None),
                Err(InvalidPage),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_page_size_above_1000_is_capped() {
        let request = PageRequest::from_query(None, Some("5000")).expect("valid");

        assert_eq!(request.size(), 1000);
    }

    #[test]
    fn a_non_numeric_or_non_positive_page_size_is_ignored() {
        for bad in ["abc", "0", "-5"] {
            let request = PageRequest::from_query(None, Some(bad)).expect("valid");
            assert_eq!(request.size(), 50, "{bad}");
        }
    }

    #[test]
    fn an_empty_list_is_page_1_of_1() {
        let request = PageRequest::default();

        assert_eq!(request.page_count(0), 1);
        assert_eq!(request.check(0), Ok(()));
        assert_eq!(PageRequest::new(2, 50).check(0), Err(InvalidPage));
    }

    #[test]
    fn a_page_past_the_end_is_invalid() {
        assert_eq!(PageRequest::new(101, 50).check(5022), Ok(()));
        assert_eq!(PageRequest::new(102, 50).check(5022), Err(InvalidPage));
        assert_eq!(PageRequest::new(1, 50).page_count(5022), 101);
    }

    #[test]
    fn the_offset_skips_the_earlier_pages() {
        assert_eq!(PageRequest::new(3, 50).offset(), 100);
    }

    #[test]
    fn next_and_previous_exist_except_at_the_ends() {
        let page = |n| Page {
            items: Vec::<()>::new(),
            total: 120,
            request: PageRequest::new(n, 50),
        };

        assert!(!page(1).has_previous() && page(1).has_next());
        assert!(page(2).has_previous() && page(2).has_next());
        assert!(page(3).has_previous() && !page(3).has_next());
    }
}
