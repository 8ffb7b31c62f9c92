//! Headless Chromium driven over the DevTools protocol through `--remote-debugging-pipe`: JSON messages ended by a
//! NUL byte, written to the browser's file descriptor 3 and read from its descriptor 4. The browser test needs a few
//! commands and three events of the protocol, so this client is the few calls it makes rather than a DevTools crate:
//! headless_chrome (the one used before) and the crates it alone brought in were about 110 CPU-seconds of a cold
//! test build, a fifth of it a second TLS stack for its build script's HTTP client (docs/results.md, "A lighter test
//! build").

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long one command, or a wait for an event or an element, may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// One Chromium with one page, attached through a flattened session.
pub struct Browser {
    child: Child,
    pipe: RefCell<Pipe>,
    session: String,
    _profile: tempfile::TempDir,
}

/// The browser's two pipes and what has come through them (behind a `RefCell`, so a test's closures can share one
/// `&Browser`).
struct Pipe {
    to_browser: File,
    from_browser: Receiver<Value>,
    next_id: u64,
    /// Every event of the page's session, in the order it came, as `{method, params, sessionId}`.
    events: Vec<Value>,
}

impl Browser {
    /// Start `chromium` headless with `args` added, open a blank page and attach to it.
    pub fn launch(chromium: &Path, window: (u32, u32), args: &[&str]) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let (commands_read, commands_write) = std::io::pipe().unwrap();
        let (replies_read, replies_write) = std::io::pipe().unwrap();
        // Descriptors 3 and 4 in the child: moved above 10 first, so that dup2 onto 3 cannot overwrite the other
        // end when the pipes were given 3 or 4 here.
        let commands_in = above_ten(commands_read.into());
        let replies_out = above_ten(replies_write.into());
        let (read_fd, write_fd) = (commands_in.as_raw_fd(), replies_out.as_raw_fd());
        let mut command = Command::new(chromium);
        command
            .args(["--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .arg(format!("--window-size={},{}", window.0, window.1))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: between fork and exec the closure calls only dup2, which is async-signal-safe, on descriptors
        // that stay open in the parent until the spawn returns; dup2's copies are not close-on-exec.
        unsafe {
            command.pre_exec(move || {
                for (from, to) in [(read_fd, 3), (write_fd, 4)] {
                    if libc::dup2(from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", chromium.display()));
        // The child's ends close here, so a browser that exits ends the reader below.
        drop((commands_in, replies_out));

        let (sender, from_browser) = channel();
        std::thread::spawn(move || {
            for message in BufReader::new(replies_read).split(0) {
                let Ok(message) = message else { break };
                let value = serde_json::from_slice(&message).expect("the browser sent a message that is not JSON");
                if sender.send(value).is_err() {
                    break;
                }
            }
        });
        let to_browser = File::from(OwnedFd::from(commands_write));
        let pipe = RefCell::new(Pipe { to_browser, from_browser, next_id: 0, events: Vec::new() });
        let mut browser = Browser { child, pipe, session: String::new(), _profile: profile };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = browser.call("Target.attachToTarget", json!({"targetId": target, "flatten": true}));
        browser.session = attached["sessionId"].as_str().expect("a session id").to_owned();
        for domain in ["Page", "Runtime", "Log"] {
            browser.call(&format!("{domain}.enable"), json!({}));
        }
        browser
    }

    /// Load `url` in the page and wait for its load event.
    pub fn navigate(&self, url: &str) {
        let before = self.pipe.borrow().events.len();
        let navigated = self.call("Page.navigate", json!({"url": url}));
        if let Some(error) = navigated.get("errorText") {
            panic!("navigating to {url}: {error}");
        }
        if self.pipe.borrow().events[before..].iter().any(|e| e["method"] == "Page.loadEventFired") {
            return;
        }
        self.next_message(|m| m["method"] == "Page.loadEventFired" && m["sessionId"] == json!(self.session))
            .unwrap_or_else(|| panic!("{url} did not load within {TIMEOUT:?}"));
    }

    /// Every event of the page so far, in the order it came, as `{method, params, sessionId}`.
    pub fn events(&self) -> Vec<Value> {
        self.pipe.borrow().events.clone()
    }

    /// Send `method` to the page (to the browser itself before a page is attached) and wait for its result.
    /// The page's Page, Runtime and Log events are on from the start.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let id = {
            let mut pipe = self.pipe.borrow_mut();
            pipe.next_id += 1;
            pipe.next_id
        };
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        let sent = self.pipe.borrow_mut().to_browser.write_all(&bytes);
        sent.unwrap_or_else(|e| panic!("sending {method} to the browser: {e}"));
        let reply = self.next_message(|m| m["id"] == id).unwrap_or_else(|| panic!("no reply to {method}"));
        if let Some(error) = reply.get("error") {
            panic!("{method} failed: {error}");
        }
        reply["result"].clone()
    }

    /// Evaluate `js` in the page and return its value (which must survive JSON).
    pub fn evaluate(&self, js: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({"expression": js, "returnByValue": true}));
        if let Some(details) = result.get("exceptionDetails") {
            panic!("evaluating {js}: {details}");
        }
        result["result"]["value"].clone()
    }

    /// Poll until `selector` matches an element of the page.
    pub fn wait_for_element(&self, selector: &str) {
        let start = Instant::now();
        let js = format!("document.querySelector({}) !== null", json!(selector));
        while self.evaluate(&js) != json!(true) {
            assert!(start.elapsed() < TIMEOUT, "no element matches {selector} after {TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The next message that `wanted` accepts; the page's events read on the way are kept for [`Browser::events`].
    fn next_message(&self, wanted: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + TIMEOUT;
        let mut pipe = self.pipe.borrow_mut();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match pipe.from_browser.recv_timeout(left) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => panic!("the browser closed its pipe: it exited"),
            };
            let accepted = wanted(&message);
            if message.get("method").is_some() && message["sessionId"] == json!(self.session) {
                pipe.events.push(message.clone());
            }
            if accepted {
                return Some(message);
            }
        }
    }
}

impl Drop for Browser {
    /// Ask the browser to close (it ends its renderer processes), and kill it if it has not within five seconds.
    fn drop(&mut self) {
        let _ = self.pipe.get_mut().to_browser.write_all(b"{\"id\":0,\"method\":\"Browser.close\"}\0");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A copy of `fd` numbered 10 or above (close-on-exec, as the original was); the original is closed.
fn above_ten(fd: OwnedFd) -> OwnedFd {
    // SAFETY: F_DUPFD_CLOEXEC only makes a new descriptor for an open one, which `fd` is while borrowed here.
    let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    assert!(copy >= 0, "fcntl(F_DUPFD_CLOEXEC): {}", std::io::Error::last_os_error());
    // SAFETY: `copy` is a descriptor just made for us, owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(copy) }
}
