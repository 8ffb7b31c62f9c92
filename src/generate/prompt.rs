//! The reference study's prompt layouts (reading the replies is [`super::reply`]'s).
//!
//! - [`fine_tuned`]: the plain-completion layout qwen-student was trained on. Sections are separated by one blank
//!   line, each an upper-case label with a colon on its own line; code is wrapped as `<code>...</code>`.
//! - [`prompted`]: the chat layout for instruction-tuned models: a system message, then the same sections
//!   (`SUBMISSIONS SO FAR` for earlier attempts) and instructions in our own words.
//!
//! Autoregressive streams add a `FEEDBACK:` section (the last attempt's label, failing examples and any tutor
//! hint) before the earlier attempts. That section is ours: without feedback the prompts are exactly the study's.

use std::fmt::Write;

use super::{ContextProblem, Feedback, Request, Target};
use crate::trajectory::views::Stage;

/// A chat message for an OpenAI-compatible endpoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

pub const SYSTEM: &str = "You are simulating a student in an introductory Python programming course who is working \
on a homework problem. Write code the way this student would at this point in their work, including the mistakes \
and the style a novice has; do not write a better solution than the student would.";

fn code(text: &str) -> String {
    format!("<code>{}</code>", text.trim())
}

/// Runs of newlines collapsed to one, as the study did for instructions.
fn collapse_newlines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.trim().chars() {
        if !(c == '\n' && out.ends_with('\n')) {
            out.push(c);
        }
    }
    out
}

fn context_section(context: &[ContextProblem]) -> Option<String> {
    if context.is_empty() {
        return None;
    }
    let mut s = String::from("PAST PROBLEM SUBMISSIONS:");
    for c in context {
        let _ = write!(s, "\nPROBLEM NAME: {}\n{}", c.problem, c.codes.iter().map(|c| code(c)).collect::<String>());
    }
    Some(s)
}

fn feedback_section(feedback: &Feedback) -> String {
    let mut s = format!("FEEDBACK:\nThe last attempt was graded: {}.", feedback.label.as_str());
    if let Some(message) = &feedback.message {
        let _ = write!(s, "\n{}", message.trim_end());
    }
    for f in &feedback.failing {
        let _ = write!(s, "\n>>> {}\nexpected: {}\ngot: {}", f.source.trim_end(), f.want.trim_end(), f.got.trim_end());
    }
    if let Some(hint) = &feedback.hint {
        let _ = write!(s, "\nTutor hint: {}", hint.trim());
    }
    s
}

/// The sections every layout shares: context, instructions, fixed code, TODO code, and feedback on the last
/// attempt when there is some.
fn problem_sections(request: &Request) -> Vec<String> {
    let p = &request.problem;
    let mut sections: Vec<String> = context_section(&request.context).into_iter().collect();
    sections.push(format!("PROBLEM INSTRUCTIONS:\n{}", collapse_newlines(&p.statement)));
    sections.push(format!("FIXED CODE:\n{}", code(&p.fixed)));
    sections.push(format!("TODO CODE:\n{}", code(&p.todo)));
    if let Some(feedback) = request.history.last().and_then(|a| a.feedback.as_ref()) {
        sections.push(feedback_section(feedback));
    }
    sections
}

fn stage_line(stage: Stage) -> &'static str {
    match stage {
        Stage::First => "SUBMISSION Q0:",
        Stage::Middle => "SUBMISSION Q1:",
        Stage::Last => "SUBMISSION Q2:",
    }
}

fn attempts(request: &Request) -> String {
    request.history.iter().map(|a| code(&a.code)).collect()
}

/// The fine-tuned model's completion prompt.
pub fn fine_tuned(request: &Request) -> String {
    let mut sections = problem_sections(request);
    sections.push(match request.target {
        Target::Stage(stage) => stage_line(stage).to_owned(),
        Target::Next => format!("SUBMISSIONS:\n{}", attempts(request)),
    });
    sections.join("\n\n") + "\n"
}

/// The prompted model's chat messages.
pub fn prompted(request: &Request) -> Vec<Message> {
    let mut sections = problem_sections(request);
    let task = match request.target {
        Target::Stage(Stage::First) => "Write the student's first attempt at this problem.",
        Target::Stage(Stage::Middle) => "Write the student's attempt from the middle of their work on this problem.",
        Target::Stage(Stage::Last) => "Write the student's final attempt at this problem.",
        Target::Next => {
            if !request.history.is_empty() {
                sections.push(format!("SUBMISSIONS SO FAR:\n{}", attempts(request)));
            }
            "Write the student's next attempt."
        }
    };
    sections.push(format!(
        "INSTRUCTIONS:\n{task} Write only the functions from TODO CODE, without their docstrings, and do not repeat \
         the fixed code. If the student would submit this attempt as their final one, write <SUBMIT> after the code. \
         Wrap the code in <code> and </code>."
    ));
    vec![
        Message { role: "system", content: SYSTEM.to_owned() },
        Message { role: "user", content: sections.join("\n\n") },
    ]
}

/// `messages` in Qwen's ChatML template, ending where the assistant's reply starts (what transformers'
/// `apply_chat_template(..., add_generation_prompt=True)` gives for Qwen2.5 when a system message is present).
pub fn chatml(messages: &[Message]) -> String {
    let mut text: String =
        messages.iter().map(|m| format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content)).collect();
    text.push_str("<|im_start|>assistant\n");
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::generate::{Attempt, FailingExample};
    use crate::grade::Label;
    use crate::problems::Problem;

    fn request(target: Target, history: Vec<Attempt>, context: Vec<ContextProblem>) -> Request {
        let mut problem = Problem::scaffold("add-one");
        problem.statement = "Write add_one(x).\n\n\nIt returns x + 1.".into();
        problem.fixed = "ONE = 1\n".into();
        problem.todo = "def add_one(x):\n    \"\"\"\n    >>> add_one(1)\n    2\n    \"\"\"\n".into();
        Request { problem: Arc::new(problem), student: "s1".into(), history, context, target, seed: 0 }
    }

    const TODO: &str = "<code>def add_one(x):\n    \"\"\"\n    >>> add_one(1)\n    2\n    \"\"\"</code>";

    #[test]
    fn fine_tuned_stage_prompt() {
        let prompt = fine_tuned(&request(Target::Stage(Stage::Middle), vec![], vec![]));
        let want = format!(
            "PROBLEM INSTRUCTIONS:\nWrite add_one(x).\nIt returns x + 1.\n\nFIXED CODE:\n<code>ONE = 1</code>\n\n\
             TODO CODE:\n{TODO}\n\nSUBMISSION Q1:\n"
        );
        assert_eq!(prompt, want);
    }

    #[test]
    fn fine_tuned_next_step_prompt_with_context() {
        let history = vec![
            Attempt { code: "def add_one(x):\n    return x\n".into(), feedback: None },
            Attempt { code: "def add_one(x):\n    return x+1".into(), feedback: None },
        ];
        let context = vec![ContextProblem {
            problem: "hello".into(),
            codes: vec!["print('hi')".into(), "print('hello')\n".into()],
        }];
        let prompt = fine_tuned(&request(Target::Next, history, context));
        let want = format!(
            "PAST PROBLEM SUBMISSIONS:\nPROBLEM NAME: hello\n<code>print('hi')</code><code>print('hello')</code>\n\n\
             PROBLEM INSTRUCTIONS:\nWrite add_one(x).\nIt returns x + 1.\n\nFIXED CODE:\n<code>ONE = 1</code>\n\n\
             TODO CODE:\n{TODO}\n\nSUBMISSIONS:\n<code>def add_one(x):\n    return x</code><code>def add_one(x):\n    return x+1</code>\n"
        );
        assert_eq!(prompt, want);
    }

    #[test]
    fn prompted_next_step_with_feedback() {
        let feedback = Feedback {
            label: Label::Logical,
            message: None,
            failing: vec![FailingExample { source: "add_one(1)".into(), want: "2\n".into(), got: "1\n".into() }],
            hint: Some("Look at what you return.".into()),
            tutor_error: None,
        };
        let history = vec![Attempt { code: "def add_one(x):\n    return x".into(), feedback: Some(feedback) }];
        let messages = prompted(&request(Target::Next, history, vec![]));
        assert_eq!(messages[0].content, SYSTEM);
        let want = format!(
            "PROBLEM INSTRUCTIONS:\nWrite add_one(x).\nIt returns x + 1.\n\nFIXED CODE:\n<code>ONE = 1</code>\n\n\
             TODO CODE:\n{TODO}\n\nFEEDBACK:\nThe last attempt was graded: logical.\n>>> add_one(1)\nexpected: 2\n\
             got: 1\nTutor hint: Look at what you return.\n\nSUBMISSIONS SO FAR:\n<code>def add_one(x):\n    return x</code>\n\n\
             INSTRUCTIONS:\nWrite the student's next attempt. Write only the functions from TODO CODE, without their \
             docstrings, and do not repeat the fixed code. If the student would submit this attempt as their final \
             one, write <SUBMIT> after the code. Wrap the code in <code> and </code>."
        );
        assert_eq!(messages[1].content, want);
    }

    /// The layout `export sft --feedback` trains on and a stream shows: the last attempt's feedback after the TODO
    /// code, before the submissions; only the last attempt's.
    #[test]
    fn fine_tuned_next_step_prompt_with_feedback() {
        let feedback = |label, message: Option<&str>, failing: Vec<FailingExample>| Feedback {
            label,
            message: message.map(str::to_owned),
            failing,
            hint: None,
            tutor_error: None,
        };
        let history = vec![
            Attempt {
                code: "def add_one(x)\n    return x".into(),
                feedback: Some(feedback(Label::Compile, Some("SyntaxError: expected ':'"), vec![])),
            },
            Attempt {
                code: "def add_one(x):\n    return x".into(),
                feedback: Some(feedback(
                    Label::Logical,
                    None,
                    vec![FailingExample { source: "add_one(1)".into(), want: "2\n".into(), got: "1\n".into() }],
                )),
            },
        ];
        let prompt = fine_tuned(&request(Target::Next, history, vec![]));
        let want = format!(
            "PROBLEM INSTRUCTIONS:\nWrite add_one(x).\nIt returns x + 1.\n\nFIXED CODE:\n<code>ONE = 1</code>\n\n\
             TODO CODE:\n{TODO}\n\nFEEDBACK:\nThe last attempt was graded: logical.\n>>> add_one(1)\nexpected: 2\n\
             got: 1\n\nSUBMISSIONS:\n<code>def add_one(x)\n    return x</code><code>def add_one(x):\n    return x</code>\n"
        );
        assert_eq!(prompt, want);
        let compile = vec![Attempt {
            code: "def add_one(x)\n    return x".into(),
            feedback: Some(feedback(Label::Compile, Some("SyntaxError: expected ':' (line 1)\n"), vec![])),
        }];
        let prompt = fine_tuned(&request(Target::Next, compile, vec![]));
        assert!(
            prompt.contains("\n\nFEEDBACK:\nThe last attempt was graded: compile.\nSyntaxError: expected ':' (line 1)\n\nSUBMISSIONS:\n"),
            "the message follows the label on its own line: {prompt}"
        );
    }

    #[test]
    fn chatml_ends_at_the_assistant_turn() {
        let messages = [Message { role: "system", content: "S".into() }, Message { role: "user", content: "U".into() }];
        assert_eq!(
            chatml(&messages),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
