//! Service endpoints: the API root, health, readiness, metrics, OpenAPI (CONTRACT §7).

use orgs_tests::{TestApp, on_both_backends};
use reqwest::Method;

on_both_backends!(
    the_service_endpoints_answer_without_authentication,
    the_openapi_document_lists_the_organization_routes,
    metrics_count_requests_by_route_and_status,
);

async fn the_service_endpoints_answer_without_authentication(app: TestApp) {
    let root = app.send(app.request(Method::GET, "/", None)).await;
    let health = app.send(app.request(Method::GET, "/healthz", None)).await;
    let ready = app.send(app.request(Method::GET, "/readyz", None)).await;

    assert_eq!(root.status, 200);
    let links = root.body.to_string();
    for link in ["/organizations/", "/me/", "/auth/token/"] {
        assert!(links.contains(link), "{link} in {links}");
    }
    assert_eq!(health.status, 200);
    assert_eq!(ready.status, 200);
}

async fn the_openapi_document_lists_the_organization_routes(app: TestApp) {
    let reply = app
        .send(app.request(Method::GET, "/openapi.json", None))
        .await;

    assert_eq!(reply.status, 200);
    assert!(
        reply.body["openapi"]
            .as_str()
            .is_some_and(|version| version.starts_with('3'))
    );
    let paths = reply.body["paths"].as_object().expect("paths");
    assert!(paths.keys().any(|path| path.starts_with("/organizations")));
    assert!(paths.keys().any(|path| path.contains("invite_user")));
}

async fn metrics_count_requests_by_route_and_status(app: TestApp) {
    app.get("/organizations/", &app.admin_key).await;
    app.get("/organizations/abc/", &app.admin_key).await;

    let reply = app.send(app.request(Method::GET, "/metrics", None)).await;

    assert_eq!(reply.status, 200);
    assert!(reply.text.contains("/organizations"), "{}", reply.text);
    assert!(reply.text.contains("status=\"200\""), "{}", reply.text);
    assert!(reply.text.contains("outbox"), "{}", reply.text);
}
