//! The shifts page end to end, over HTTP against a real `serve` on SQLite: an admin
//! saves a shift calendar as text (the form, with its token); reports use it at once and
//! after a restart; text that does not read is refused with why and changes nothing; a
//! viewer cannot see or change it; "Use the configuration file's" puts the file's back.

use serde_json::Value;

use crate::accounts::{user_cli, Client, ADA_PASSWORD};
use crate::support::start_logged;

const CALENDAR: &str = "[[shift]]\r\nname = \"Round the clock\"\r\ndays = [\"Mon\", \"Tue\", \"Wed\", \"Thu\", \"Fri\", \"Sat\", \"Sun\"]\r\nstart = \"00:00\"\r\nend = \"00:00\"\r\n";

/// The form token of a page's forms.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    page[at..at + 64].to_owned()
}

/// The shift the report of the shift under way names.
async fn shift_now(client: &mut Client) -> Value {
    let (status, body) = client.get("/api/oee?period=shift").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["shift"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edits_the_shift_calendar_on_its_page() {
    let dir = std::env::temp_dir().join(format!("fd-shifts-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let data_dir = dir.to_str().unwrap().to_owned();
    let store = ["--data-dir", data_dir.as_str()];
    let (ok, out) = user_cli(&store, &["add", "--admin", "ada"], ADA_PASSWORD).await;
    assert!(ok, "{out}");
    let args = [
        "serve",
        "--demo",
        "--speed",
        "20",
        "--data-dir",
        &data_dir,
        "--time-zone",
        "Europe/Berlin",
        "--listen",
        "127.0.0.1:0",
    ];
    let (fd, _log) = start_logged(&args, &[]).await;
    let (mut ada, mut vera) = crate::accounts::admin_and_viewer(&fd.base, 5).await;

    let (status, page, _) = ada.page("/admin/shifts").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Shift calendar") && page.contains("none: every minute is planned"));
    assert!(page.contains("Europe/Berlin"));
    let token = csrf(&page);
    assert_eq!(vera.page("/admin/shifts").await.0, 403);
    let before = shift_now(&mut ada).await;
    assert_ne!(before, "Round the clock");

    // Saved: in effect at once, shown as planned on the page.
    let (status, _, _) = vera
        .form(
            "/admin/shifts",
            &[("csrf", &token), ("action", "save"), ("calendar", CALENDAR)],
        )
        .await;
    assert_eq!(status, 403, "a viewer changes nothing");
    let (status, _, _) = ada
        .form(
            "/admin/shifts",
            &[("action", "save"), ("calendar", CALENDAR)],
        )
        .await;
    assert_eq!(status, 403, "without the form's token");
    let (status, body, _) = ada
        .form(
            "/admin/shifts",
            &[("csrf", &token), ("action", "save"), ("calendar", CALENDAR)],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(shift_now(&mut ada).await, "Round the clock");
    let (_, page, _) = ada.page("/admin/shifts?done=shifts-saved").await;
    assert!(page.contains("in effect now") && page.contains("saved on this page by ada"));
    assert!(
        page.contains("Round the clock 00:00–00:00 (24 h 00 planned)"),
        "{page}"
    );

    // Refused with why; the calendar in effect stays.
    for (bad, says) in [
        (
            "[[cell]]\nname = \"A\"\ndevices = [\"*\"]",
            "only [[shift]] tables and holidays",
        ),
        (
            "[[shift]]\nname = \"X\"\ndays = [\"Funday\"]\nstart = \"06:00\"\nend = \"14:00\"",
            "Funday",
        ),
        ("[[shift]", "not TOML"),
    ] {
        let (status, body, _) = ada
            .form(
                "/admin/shifts",
                &[("csrf", &token), ("action", "save"), ("calendar", bad)],
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains(says), "{bad}: {body}");
        assert_eq!(shift_now(&mut ada).await, "Round the clock");
    }
    fd.terminate(std::time::Duration::from_secs(10)).await;

    // After a restart, still in effect; then the configuration file's (none) again.
    let (fd, _log) = start_logged(&args, &[]).await;
    let mut ada = Client::new(&fd.base, Some("127.0.5.1".parse().unwrap()));
    assert_eq!(ada.sign_in("ada", ADA_PASSWORD).await, 303);
    assert_eq!(shift_now(&mut ada).await, "Round the clock");
    let (_, page, _) = ada.page("/admin/shifts").await;
    assert!(page.contains("Round the clock"));
    let token = csrf(&page);
    let (status, _, _) = ada
        .form("/admin/shifts", &[("csrf", &token), ("action", "reset")])
        .await;
    assert_eq!(status, 303);
    assert_eq!(shift_now(&mut ada).await, before);
    let (_, audit) = ada.get("/api/audit?action=shifts-changed").await;
    assert_eq!(audit.matches("\"shifts-changed\"").count(), 2, "{audit}");
    fd.terminate(std::time::Duration::from_secs(10)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
