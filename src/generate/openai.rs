//! A generator served over an OpenAI-compatible API (vLLM, llama.cpp server, TGI, hosted APIs): the chat
//! endpoint with the study's prompted layout, or the completions endpoint with the fine-tuned layout.
//!
//! Requests are limited to `concurrency` at a time, each under a timeout, retried with exponential backoff
//! (honouring `Retry-After`) on 429, 5xx and connection failures. A refused API key or an unreachable endpoint
//! is found by [`OpenAi::check`] before a rollout starts; other failures become per-row errors.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::prompt;
use super::{BoxFuture, Generation, Generator, NoCode, Request, prompt_sha256, snippet};
use crate::BadInput;

/// Which endpoint, and so which prompt layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    /// `/chat/completions` with the prompted layout (instruction-tuned models: qwen-inst, gpt-4.1).
    Chat,
    /// `/completions` with the fine-tuned layout (qwen-student served as a plain completion model).
    Completions,
}

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Up to and including the version segment, e.g. `http://localhost:8000/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub endpoint: Endpoint,
    pub temperature: f64,
    pub top_p: f64,
    pub max_tokens: u32,
    /// Extra sampling fields sent only when set (vLLM reads `top_k`, `min_p`, `repetition_penalty`).
    pub extra_sampling: serde_json::Map<String, Value>,
    pub concurrency: usize,
    pub timeout: Duration,
    pub retries: u32,
    /// First backoff; doubled after each retry.
    pub backoff: Duration,
}

pub struct OpenAi {
    name: String,
    config: OpenAiConfig,
    client: reqwest::Client,
    permits: Semaphore,
}

impl OpenAi {
    pub fn new(name: &str, config: OpenAiConfig) -> Result<Self> {
        let client = http_client(config.timeout)?;
        let permits = Semaphore::new(config.concurrency.max(1));
        Ok(Self { name: name.to_owned(), config, client, permits })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.config.base_url.trim_end_matches('/'))
    }

    fn authorized(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.api_key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// Reach the endpoint once (`GET /models`) so that a wrong URL or a refused key stops the run with one line
    /// before any work. Servers without `/models` (404) pass.
    pub async fn check(&self) -> Result<()> {
        let response = self
            .authorized(self.client.get(self.url("models")))
            .send()
            .await
            .map_err(|e| BadInput(format!("cannot reach {}: {}", self.config.base_url, root_cause(&e))))?;
        match response.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => Err(BadInput(format!(
                "{} refused the API key (HTTP {}): {}",
                self.config.base_url,
                s.as_u16(),
                snippet(&error_text(response).await)
            ))
            .into()),
            _ => Ok(()), // a transient failure here is retried per request later
        }
    }

    /// POST `body` to `path`, retrying what a retry can fix.
    async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let mut backoff = self.config.backoff;
        let mut attempt = 0;
        loop {
            let sent = self.authorized(self.client.post(self.url(path))).json(body).send().await;
            let retry_after = match sent {
                Ok(response) if response.status().is_success() => {
                    return Ok(serde_json::from_slice(&body_within(response, MAX_RESPONSE_BYTES).await?)?);
                }
                Ok(response)
                    if response.status() == StatusCode::TOO_MANY_REQUESTS || response.status().is_server_error() =>
                {
                    let wait = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<f64>().ok());
                    if attempt >= self.config.retries {
                        bail!(
                            "HTTP {} after {} retries: {}",
                            response.status().as_u16(),
                            attempt,
                            snippet(&error_text(response).await)
                        );
                    }
                    wait.map(Duration::from_secs_f64)
                }
                Ok(response) => {
                    bail!("HTTP {}: {}", response.status().as_u16(), snippet(&error_text(response).await))
                }
                Err(e) if attempt >= self.config.retries => bail!("{} after {} retries", root_cause(&e), attempt),
                Err(_) => None,
            };
            tokio::time::sleep(retry_after.unwrap_or(backoff).min(Duration::from_secs(60))).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    async fn complete(&self, request: &Request) -> Result<Generation> {
        let c = &self.config;
        let (path, mut body, prompt_text) = match c.endpoint {
            Endpoint::Chat => {
                let messages = prompt::prompted(request);
                let text = serde_json::to_string(&messages)?;
                let body = json!({"model": c.model, "messages": messages, "temperature": c.temperature,
                    "top_p": c.top_p, "max_tokens": c.max_tokens, "seed": request.seed, "n": 1});
                ("chat/completions", body, text)
            }
            Endpoint::Completions => {
                let text = prompt::fine_tuned(request);
                let body = json!({"model": c.model, "prompt": text, "temperature": c.temperature, "top_p": c.top_p,
                    "max_tokens": c.max_tokens, "seed": request.seed, "n": 1, "stop": ["</code>"]});
                ("completions", body, text)
            }
        };
        if let Some(fields) = body.as_object_mut() {
            fields.extend(c.extra_sampling.clone());
        }
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let reply = self.post(path, &body).await?;
        let choice = &reply["choices"][0];
        let text = choice["message"]["content"].as_str().or_else(|| choice["text"].as_str()).ok_or_else(|| {
            anyhow!("the reply has no choices[0].message.content or choices[0].text: {}", snippet(&reply.to_string()))
        })?;
        let truncated = choice["finish_reason"].as_str() == Some("length");
        Generation::from_reply(text, truncated, prompt_sha256(&prompt_text))
            .ok_or_else(|| NoCode::new(text, truncated).into())
    }
}

impl Generator for OpenAi {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Generation>> {
        Box::pin(self.complete(request))
    }
}

/// An HTTP(S) client whose every request must finish within `timeout`.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    // One process-wide TLS provider; installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder().timeout(timeout).build()?)
}

/// The innermost cause of a transport error (`connection refused`), which reqwest's own message hides.
fn root_cause(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    if error.is_timeout() { "timed out".into() } else { source.to_string() }
}

/// The largest answer read from a model server: a chat completion of a few thousand tokens is far below it, and a
/// broken or hostile server cannot fill memory.
const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// `response`'s body, if it is at most `limit` bytes; a longer one is an error as soon as it passes the limit.
pub(crate) async fn body_within(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            bail!("the answer is over {} KiB", limit >> 10);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The start of an error answer's body, for the error message.
async fn error_text(response: reqwest::Response) -> String {
    String::from_utf8_lossy(&body_within(response, 64 << 10).await.unwrap_or_default()).into_owned()
}
