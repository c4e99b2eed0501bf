//! Pages of rows: the bounds a `PageRequest` binds as `limit`/`offset`, and the
//! `Page` built from a page of rows and the list's total.

use domain::pagination::{Page, PageRequest};
use ports::outbound::StorageError;

/// `(limit, offset)` of a page, as SQL binds them.
pub(crate) fn page_bounds(page: PageRequest) -> (i64, i64) {
    (
        i64::try_from(page.size()).unwrap_or(i64::MAX),
        i64::try_from(page.offset()).unwrap_or(i64::MAX),
    )
}

/// A `count(*)` as `u64`.
pub(crate) fn count(total: i64) -> u64 {
    u64::try_from(total).unwrap_or(0)
}

/// The page of domain values made from a page of rows.
pub(crate) fn page_of<Row, T>(
    rows: Vec<Row>,
    total: i64,
    page: PageRequest,
) -> Result<Page<T>, StorageError>
where
    T: TryFrom<Row, Error = StorageError>,
{
    Ok(Page {
        items: rows
            .into_iter()
            .map(T::try_from)
            .collect::<Result<_, _>>()?,
        total: count(total),
        request: page,
    })
}
