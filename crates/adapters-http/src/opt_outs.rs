//! Opt-outs: record, list newest first, and stream as CSV (CONTRACT §6).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::optout::{OptOut, OptOutRecorded, OptOutRequest};
use futures::StreamExt;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{ListQuery, Scoped};
use crate::openapi::{BodyRefused, ListParams, OrganizationPath, Refused};
use crate::pagination::Paginated;
use crate::request::{self, list_filters, request_body};
use utoipa_axum::routes;

use crate::{Routes, links, schema};

/// The routes of this module, each documented by its handler's `utoipa::path`.
pub(crate) fn routes() -> Vec<Routes> {
    vec![routes!(list, record)]
}

/// The most rows written as one chunk of the CSV body.
const CSV_CHUNK_ROWS: usize = 500;

/// The CSV header line.
pub const CSV_HEADER: &str = "address,origin,creation_date\r\n";

/// An opt-out.
#[derive(Debug, Serialize, ToSchema)]
pub struct OptOutDto {
    /// The address that opted out.
    pub address: String,
    /// `mail`, `web`, `feedback-loop`, `bounce`, `abuse` or `api`.
    pub origin: String,
    /// When it opted out (ISO 8601, UTC).
    pub creation_date: String,
}

impl From<&OptOut> for OptOutDto {
    fn from(opt_out: &OptOut) -> Self {
        Self {
            address: opt_out.address.to_string(),
            origin: opt_out.origin.as_str().to_owned(),
            creation_date: links::timestamp(opt_out.creation_date),
        }
    }
}

request_body! {
    /// An opt-out to record.
    pub struct OptOutWrite => OptOutRequest {
        /// The address.
        address: request::Email, required;
        /// The origin; `api` when absent.
        origin: request::Origin;
    }
}

list_filters! {
    /// The filters of the opt-out list.
    pub struct OptOutFilters {
        /// Only this address.
        address: schema::text_filter;
        /// Only this origin; empty for all.
        origin: schema::origin_filter;
    }
}

/// The format of the opt-out list.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatParam {
    /// `csv` for CSV, `json` or empty for JSON.
    #[param(schema_with = schema::format_filter)]
    pub format: Option<String>,
}

/// Whether the list is asked as CSV: `?format=csv`, or `Accept` preferring `text/csv`.
/// An unknown `?format=` is a 404, as DRF's format suffixes are.
fn wants_csv(headers: &HeaderMap, query: &ListQuery) -> Result<bool, ApiError> {
    match query.get("format") {
        Some("csv") => return Ok(true),
        Some("json") => return Ok(false),
        Some("") | None => {}
        Some(_) => return Err(ApiError::NotFound),
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let (mut csv, mut json) = (0.0_f32, 0.0_f32);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .find_map(|param| {
                let (name, value) = param.split_once('=')?;
                (name.trim() == "q").then(|| value.trim().parse::<f32>().ok())?
            })
            .unwrap_or(1.0);
        match media.as_str() {
            "text/csv" => csv = csv.max(quality),
            "application/json" | "application/*" | "*/*" => json = json.max(quality),
            _ => {}
        }
    }
    Ok(csv > 0.0 && csv > json)
}

/// The first characters that make a spreadsheet read a cell as a formula (OWASP CSV
/// injection): a cell starting with one of them is written with a `'` before it.
pub const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One CSV cell as written: with a `'` before it when it starts like a formula, then
/// quoted (quotes doubled) when it holds a separator, a quote or a line break (RFC 4180).
#[must_use]
pub fn csv_cell(value: &str) -> String {
    let mut cell = String::with_capacity(value.len() + 3);
    push_csv_cell(&mut cell, value);
    cell
}

/// Appends `value` to `out` as `csv_cell` writes it, without an allocation of its own.
pub fn push_csv_cell(out: &mut String, value: &str) {
    let quoted = value.contains([',', '"', '\r', '\n']);
    if quoted {
        out.push('"');
    }
    if value.starts_with(FORMULA_STARTS) {
        out.push('\'');
    }
    if quoted {
        let mut rest = value;
        while let Some(at) = rest.find('"') {
            out.push_str(&rest[..=at]);
            out.push('"');
            rest = &rest[at + 1..];
        }
        out.push_str(rest);
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// One CSV line: the cells, comma-separated, ended by CRLF.
#[must_use]
pub fn csv_line(cells: &[&str]) -> String {
    let mut line = String::new();
    push_csv_line(&mut line, cells);
    line
}

/// Appends `csv_line(cells)` to `out`.
pub fn push_csv_line(out: &mut String, cells: &[&str]) {
    for (index, cell) in cells.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_csv_cell(out, cell);
    }
    out.push_str("\r\n");
}

/// One CSV row.
#[must_use]
pub fn csv_row(opt_out: &OptOut) -> String {
    let mut row = String::new();
    push_csv_row(&mut row, opt_out);
    row
}

/// Appends `csv_row(opt_out)` to `out`: the export writes every row of a chunk into one
/// buffer, without an allocation per row.
pub fn push_csv_row(out: &mut String, opt_out: &OptOut) {
    push_csv_cell(out, opt_out.address.as_str());
    out.push(',');
    push_csv_cell(out, opt_out.origin.as_str());
    out.push(',');
    // A date holds no separator, quote or line break; only one before year 0 or after
    // 9999 starts with a sign (`-` or `+`), which `push_csv_cell` would mark.
    let date = out.len();
    links::push_timestamp(out, opt_out.creation_date);
    if out[date..].starts_with(FORMULA_STARTS) {
        out.insert(date, '\'');
    }
    out.push_str("\r\n");
}

/// A visible organization's opt-outs, newest first; as CSV with `Accept: text/csv` or
/// `?format=csv`, streamed row by row.
#[utoipa::path(get, path = "/organizations/{id}/opt_outs/", tag = "opt-outs",
    params(OrganizationPath, OptOutFilters, FormatParam, ListParams), security(("bearer" = [])),
    responses(Refused, (status = 200, description = "A page of opt-outs, or every opt-out as CSV (address,origin,creation_date)",
            content((Paginated<OptOutDto> = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Unknown origin")))]
pub(crate) async fn list(
    Scoped { state, actor, ids }: Scoped,
    headers: HeaderMap,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let organization = ids.organization;
    let OptOutFilters { address, origin } = OptOutFilters::read(&query)?;
    if wants_csv(&headers, &query)? {
        let rows = state
            .opt_outs
            .export(&actor, organization, address, origin)
            .await?;
        let request_id = crate::request_id(&headers).to_owned();
        // Rows ready together (a page read from storage) go out as one chunk.
        let rows = rows.ready_chunks(CSV_CHUNK_ROWS).map(move |rows| {
            let mut chunk = String::with_capacity(rows.len() * 64);
            for row in rows {
                match row {
                    Ok(opt_out) => push_csv_row(&mut chunk, &opt_out),
                    Err(error) => {
                        tracing::error!(request_id = %request_id, error.message = %error, error.chain = %ports::ErrorChain(&error), "opt-out export failed");
                        return Err(std::io::Error::other("opt-out export failed"));
                    }
                }
            }
            Ok(Bytes::from(chunk))
        });
        let stream = futures::stream::once(async { Ok(Bytes::from_static(CSV_HEADER.as_bytes())) })
            .chain(rows);
        let disposition = format!("attachment; filename=\"opt-outs-{organization}.csv\"");
        let headers = [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ];
        return Ok((headers, Body::from_stream(stream)).into_response());
    }
    let page = state
        .opt_outs
        .list(&actor, organization, address, origin, query.page_request()?)
        .await?;
    Ok(Json(Paginated::new(page, &query, |o| OptOutDto::from(&o))).into_response())
}

/// Records an opt-out: 201 when new, 200 when the address had opted out already.
#[utoipa::path(post, path = "/organizations/{id}/opt_outs/", tag = "opt-outs",
    params(OrganizationPath), request_body = OptOutWrite, security(("bearer" = [])),
    responses(BodyRefused, Refused, (status = 201, body = OptOutDto, description = "Recorded"),
        (status = 200, body = OptOutDto, description = "Updated"), (status = 400, description = "Field errors")))]
pub(crate) async fn record(
    Scoped { state, actor, ids }: Scoped,
    body: OptOutWrite,
) -> Result<(StatusCode, Json<OptOutDto>), ApiError> {
    let recorded = state
        .opt_outs
        .record(&actor, ids.organization, body.into())
        .await?;
    let status = match recorded {
        OptOutRecorded::Created(_) => StatusCode::CREATED,
        OptOutRecorded::Updated(_) => StatusCode::OK,
    };
    Ok((status, Json(OptOutDto::from(recorded.opt_out()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use domain::optout::OptOutOrigin;

    #[test]
    fn csv_cells_with_separators_are_quoted() {
        assert_eq!(csv_cell("plain@example.com"), "plain@example.com");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn csv_cells_that_start_like_a_formula_get_a_quote_mark_first() {
        assert_eq!(
            csv_cell("=cmd|'/Ccalc'!A0@example.com"),
            "'=cmd|'/Ccalc'!A0@example.com"
        );
        assert_eq!(csv_cell("+1@example.com"), "'+1@example.com");
        assert_eq!(csv_cell("-1@example.com"), "'-1@example.com");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("\rx"), "\"'\rx\"");
        assert_eq!(csv_cell("=1,2"), "\"'=1,2\"");
        assert_eq!(csv_cell("a=b"), "a=b");
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn lines_appended_to_one_buffer_are_the_lines_one_after_the_other() {
        let rows: [&[&str]; 3] = [&["a@example.com", "web"], &["=x,\"y\"", ""], &["-", "b"]];
        let mut buffer = String::from("header\r\n");
        for cells in rows {
            push_csv_line(&mut buffer, cells);
        }
        let expected: String = rows.iter().map(|cells| csv_line(cells)).collect();
        assert_eq!(buffer, format!("header\r\n{expected}"));
        assert_eq!(csv_line(rows[1]), "\"'=x,\"\"y\"\"\",\r\n");
    }

    proptest::proptest! {
        /// A row is the line of its address, origin and date, whatever they hold.
        #[test]
        fn a_row_is_the_line_of_its_cells(
            address in "[=+@'a-z-]{0,3}[a-z]{1,6}@[a-z]{1,5}\\.(com|org)",
            origin in proptest::sample::select(OptOutOrigin::ALL.to_vec()),
            seconds in proptest::prelude::any::<i64>(),
            micros in 0_u32..1_000_000,
        ) {
            let Some(creation_date) =
                chrono::DateTime::from_timestamp(seconds % 400_000_000_000, micros * 1000)
            else {
                return Ok(());
            };
            let opt_out = OptOut {
                organization_id: domain::OrganizationId::new(1),
                address: match domain::EmailAddress::parse(&address) {
                    Ok(address) => address,
                    Err(_) => return Ok(()),
                },
                origin,
                creation_date,
            };

            let mut out = String::from("header\r\n");
            push_csv_row(&mut out, &opt_out);

            let expected = csv_line(&[
                opt_out.address.as_str(),
                origin.as_str(),
                &links::timestamp(creation_date),
            ]);
            proptest::prop_assert_eq!(out, format!("header\r\n{expected}"));
        }

        /// Any row written, then read back by a CSV parser, gives its cells: each as it
        /// was, with one `'` before it exactly when it starts with `=`, `+`, `-`, `@`,
        /// tab or CR.
        #[test]
        fn a_written_row_reads_back_as_its_cells(
            cells in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("[=+@\t\r\n,\"' a-z-]{0,12}")
                        .expect("a pattern"),
                    proptest::prelude::any::<String>(),
                ],
                3,
            )
        ) {
            let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
            let line = csv_line(&cells);

            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line.as_bytes());
            let records: Vec<csv::StringRecord> = reader
                .records()
                .collect::<Result<_, _>>()
                .expect("parsed");

            proptest::prop_assert_eq!(records.len(), 1);
            let read: Vec<&str> = records[0].iter().collect();
            let expected: Vec<String> = cells
                .iter()
                .map(|cell| {
                    if cell.starts_with(FORMULA_STARTS) {
                        format!("'{cell}")
                    } else {
                        (*cell).to_owned()
                    }
                })
                .collect();
            proptest::prop_assert_eq!(read, expected);
        }
    }

    #[test]
    fn csv_is_chosen_by_format_or_by_accept() {
        let query = |format: &str| ListQuery {
            path: "/".to_owned(),
            pairs: vec![("format".to_owned(), format.to_owned())],
        };
        let accept = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            headers
        };

        assert_eq!(wants_csv(&HeaderMap::new(), &query("csv")), Ok(true));
        assert_eq!(wants_csv(&accept("text/csv"), &query("json")), Ok(false));
        assert_eq!(
            wants_csv(&HeaderMap::new(), &query("xml")),
            Err(ApiError::NotFound)
        );
        assert_eq!(
            wants_csv(&accept("text/csv"), &ListQuery::default()),
            Ok(true)
        );
        assert_eq!(
            wants_csv(
                &accept("application/json, text/csv;q=0.5"),
                &ListQuery::default()
            ),
            Ok(false)
        );
        assert_eq!(wants_csv(&accept("*/*"), &ListQuery::default()), Ok(false));
    }
}
