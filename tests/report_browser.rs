//! Issue 14: the demo's `report.html` opened in headless Chromium (driven over the DevTools protocol) with the
//! network disabled: no console errors or exceptions, no resource fetched (the file is self-contained), every
//! figure drawn at a non-zero size, and the trajectory explorer switching streams when a selection changes.
//! Screenshots of the figures and the explorer are written to `target/report-figures.png` and
//! `target/report-explorer.png`.
//!
//! `STUDENTSIM_REPORT_HTML=FILE` checks that report instead of the demo's. Chromium comes from Debian's `chromium` package (`runtimes/setup.sh` installs it where it can); set
//! `STUDENTSIM_CHROMIUM` to use another binary. Without one the test says so and passes without checking.

mod cdp;

use std::path::PathBuf;

use base64::Engine as _;

use crate::common;
use cdp::Browser;

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STUDENTSIM_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Evaluate `js` in the page and return its value as JSON (as `JSON.stringify` gives it: `Infinity` is `null`).
fn json(tab: &Browser, js: &str) -> serde_json::Value {
    let text = tab.evaluate(&format!("JSON.stringify({js})"));
    serde_json::from_str(text.as_str().unwrap_or_else(|| panic!("{js} gave {text}"))).unwrap()
}

/// What the page reported as a problem: an uncaught exception, a `console.error`, or a log entry at level error.
fn reported_problem(event: &serde_json::Value) -> Option<String> {
    let params = &event["params"];
    match event["method"].as_str()? {
        "Runtime.exceptionThrown" => Some(format!("exception: {}", params["exceptionDetails"])),
        "Runtime.consoleAPICalled" if params["type"] == "error" => Some(format!("console.error: {}", params["args"])),
        "Log.entryAdded" if params["entry"]["level"] == "error" => Some(format!("log: {}", params["entry"]["text"])),
        _ => None,
    }
}

#[test]
fn demo_report_renders_offline_and_its_explorer_switches_streams() {
    let Some(chromium) = chromium() else {
        eprintln!("SKIPPED: no Chromium (install Debian's `chromium` package, or set STUDENTSIM_CHROMIUM)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // STUDENTSIM_REPORT_HTML checks another report the same way (e.g. a large one, for its load time).
    let report = match std::env::var_os("STUDENTSIM_REPORT_HTML") {
        Some(path) => PathBuf::from(path),
        None => {
            let out = dir.path().join("demo");
            let demo = common::studentsim(&["demo", "--out", out.to_str().unwrap()]);
            assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
            out.join("report.html")
        }
    };
    let html = std::fs::read_to_string(&report).unwrap();
    // The SVG namespace is a name, not an address anything fetches; no other web address may appear.
    let addresses = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!addresses.contains("http://") && !addresses.contains("https://"), "report.html names a web address");

    // Nothing outside the machine is reachable: every host name fails to resolve and every proxy is refused.
    let args = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--disable-extensions"];
    // Without Chromium's sandbox: the test may run as root, where the sandbox refuses to start.
    let tab = Browser::launch(&chromium, (1400, 1000), &args);
    tab.navigate(&format!("file://{}", report.display()));
    tab.wait_for_element("#explorer-streams .lane");

    let load_ms = json(&tab, "performance.getEntriesByType('navigation')[0].loadEventEnd");
    eprintln!("report.html: {} bytes, loaded in {load_ms} ms", html.len());
    let fetched = json(&tab, "performance.getEntriesByType('resource').map(r => r.name)");
    assert_eq!(fetched, serde_json::json!([]), "the report fetched resources: it must be self-contained");

    let figures = json(
        &tab,
        "[...document.querySelectorAll('figure')].map(f => { const r = f.querySelector('svg').getBoundingClientRect(); return [f.id, r.width, r.height]; })",
    );
    let figures = figures.as_array().unwrap();
    let ids: Vec<&str> = figures.iter().map(|f| f[0].as_str().unwrap()).collect();
    assert_eq!(ids, ["figure-embeddings", "figure-error-types", "figure-progress", "figure-attempts"]);
    for f in figures {
        assert!(f[1].as_f64().unwrap() > 100.0 && f[2].as_f64().unwrap() > 100.0, "figure drawn at {f}");
    }
    let tables = json(&tab, "document.querySelectorAll('table').length").as_u64().unwrap();
    assert!(tables >= 8, "{tables} tables");

    // Fit for a paper at 1,400 pixels: no table wider than the page or scrolling inside its box, every explorer
    // lane inside the explorer, and every figure's text at least 11 pixels as drawn.
    let wide = json(
        &tab,
        "[...document.querySelectorAll('table')].filter(t => t.getBoundingClientRect().right > document.documentElement.clientWidth || t.parentElement.scrollWidth > t.parentElement.clientWidth + 1).map(t => [t.querySelector('th').textContent, Math.round(t.getBoundingClientRect().width)])",
    );
    assert_eq!(wide, serde_json::json!([]), "tables wider than the page (first header, width)");
    let cut = json(
        &tab,
        "(() => { const box = document.getElementById('explorer-streams').getBoundingClientRect(); return [...document.querySelectorAll('#explorer-streams .lane')].filter(l => l.getBoundingClientRect().right > box.right + 1).map(l => l.dataset.set); })()",
    );
    assert_eq!(cut, serde_json::json!([]), "explorer lanes cut off at the right");
    let smallest = json(
        &tab,
        "Math.min(...[...document.querySelectorAll('figure svg')].flatMap(svg => { const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width; return [...svg.querySelectorAll('text')].map(t => parseFloat(getComputedStyle(t).fontSize) * scale); }))",
    );
    let smallest = smallest.as_f64().unwrap();
    assert!(smallest >= 11.0, "the figures' smallest text is drawn at {smallest:.1} px");

    // The explorer: one lane per set (real + the demo's six), then another student, then another problem.
    let sets =
        json(&tab, "JSON.parse(document.getElementById('explorer-data').textContent).sets.length").as_u64().unwrap();
    let state = || {
        json(
            &tab,
            "({stream: document.getElementById('explorer-streams').dataset.stream, lanes: [...document.querySelectorAll('#explorer-streams .lane')].map(l => [l.dataset.set, l.querySelectorAll('.attempt').length]), code: (document.querySelector('#explorer-streams .lane pre') || {}).textContent})",
        )
    };
    let first = state();
    assert_eq!(first["lanes"].as_array().unwrap().len() as u64, sets, "{first}");
    assert_eq!(first["lanes"][0][0], "real");
    assert!(first["lanes"][0][1].as_u64().unwrap() >= 1, "the real lane has attempts: {first}");
    let select = |id: &str, index: usize| {
        json(
            &tab,
            &format!(
                "(() => {{ const s = document.getElementById('{id}'); s.selectedIndex = {index}; s.dispatchEvent(new Event('change')); return s.value; }})()"
            ),
        )
    };
    // Another problem, one with at least two students, then its second student.
    let busy = json(
        &tab,
        "(() => { const d = JSON.parse(document.getElementById('explorer-data').textContent); const seen = new Map(); for (const s of d.streams) seen.set(s.problem, (seen.get(s.problem) || 0) + 1); return [...seen.keys()].findIndex(p => seen.get(p) >= 2 && p !== document.getElementById('explorer-problem').value); })()",
    );
    let busy = usize::try_from(busy.as_i64().unwrap()).expect("the demo has a second problem with two students");
    let problem = select("explorer-problem", busy);
    let second = state();
    assert_ne!(second["stream"], first["stream"], "picking problem {problem} did not switch the stream");
    assert!(second["stream"].as_str().unwrap().starts_with(&format!("{}/", problem.as_str().unwrap())), "{second}");
    let student = select("explorer-student", 1);
    let third = state();
    assert_ne!(third["stream"], second["stream"], "picking student {student} did not switch the stream");
    assert_eq!(
        third["stream"].as_str().unwrap(),
        format!("{}/{}", problem.as_str().unwrap(), student.as_str().unwrap()),
        "{third}"
    );
    assert_ne!(third["code"], second["code"], "the lanes still show the other student's code");
    // One generator beside the real set.
    select("explorer-generator", 1);
    assert_eq!(state()["lanes"].as_array().unwrap().len(), 2);

    // Screenshots for docs/guide-researchers.md: the figures, and the explorer with every set.
    select("explorer-generator", 0);
    for (section, file) in [("figure-embeddings", "report-figures.png"), ("explorer", "report-explorer.png")] {
        json(&tab, &format!("(document.getElementById('{section}').scrollIntoView(), true)"));
        let shot = tab.call("Page.captureScreenshot", serde_json::json!({"format": "png", "fromSurface": true}));
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        assert!(png.len() > 10_000, "the screenshot of {section} is {} bytes", png.len());
        std::fs::write(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join(file), &png).unwrap();
    }
    let problems: Vec<String> = tab.events().iter().filter_map(reported_problem).collect();
    assert!(problems.is_empty(), "the page reported: {problems:#?}");
}
