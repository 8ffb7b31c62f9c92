//! The library's closed sets as command-line choices. The library's enums know nothing of clap; here each gets
//! clap's `ValueEnum`: the name a user types and the help `--help` prints under it.

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::generate::openai::Endpoint;
use crate::generate::qwen::Layout;
use crate::metrics::style::Pep8Engine;
use crate::rollout::ShownFeedback;
use crate::score::Pep8Count;

/// `impl ValueEnum` for each enum: every variant with its name on the command line and its help.
macro_rules! choices {
    ($($ty:ident { $($variant:ident => $name:literal: $help:literal,)+ })+) => {$(
        impl ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($ty::$variant),+]
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(match self {
                    $($ty::$variant => PossibleValue::new($name).help($help),)+
                })
            }
        }
    )+};
}

choices! {
    Pep8Engine {
        Native => "native": "The Rust port: about 0.04 ms per program, against 1.2 ms for the sandboxed one",
        Sandbox => "sandbox": "pycodestyle 2.14.0 itself, in CPython inside the sandbox: the reference",
    }
    Pep8Count {
        Plain => "plain": "pycodestyle on the code exactly as submitted",
        Wrapped => "wrapped": "The reference study's count: each program wrapped in a function first",
    }
    ShownFeedback {
        Own => "own": "What the previous real attempt was graded",
        Other => "other": "A failing real attempt of another student at the same problem (the ablation: does the \
            model read it?)",
    }
    Layout {
        FineTuned => "fine-tuned": "The study's fine-tuned completion layout (qwen-student and its base model)",
        Chat => "chat": "The prompted layout in Qwen's chat template (an instruct model)",
    }
    Endpoint {
        Chat => "chat": "/chat/completions with the prompted layout (instruction-tuned models: qwen-inst, gpt-4.1)",
        Completions => "completions": "/completions with the fine-tuned layout (qwen-student served as a plain \
            completion model)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each enum's command-line names: every variant has one, they are distinct, and each parses back to it.
    fn round_trips<T: ValueEnum + PartialEq + std::fmt::Debug>() -> Vec<String> {
        let names: Vec<String> = T::value_variants()
            .iter()
            .map(|v| v.to_possible_value().expect("no variant is hidden").get_name().to_owned())
            .collect();
        for (variant, name) in T::value_variants().iter().zip(&names) {
            assert_eq!(
                &T::from_str(name, false).expect("a listed name parses"),
                variant,
                "{name} parses to another variant"
            );
        }
        names
    }

    #[test]
    fn every_choice_names_its_variant() {
        assert_eq!(round_trips::<Pep8Engine>(), ["native", "sandbox"]);
        assert_eq!(round_trips::<Pep8Count>(), ["plain", "wrapped"]);
        assert_eq!(round_trips::<ShownFeedback>(), ["own", "other"]);
        assert_eq!(round_trips::<Layout>(), ["fine-tuned", "chat"]);
        assert_eq!(round_trips::<Endpoint>(), ["chat", "completions"]);
    }

    /// The names a user types are the names settings files store (serde), so one spelling covers both.
    #[test]
    fn command_line_names_are_the_serialized_names() {
        fn same<T: ValueEnum + serde::Serialize>() {
            for v in T::value_variants() {
                let name = v.to_possible_value().expect("not hidden").get_name().to_owned();
                assert_eq!(serde_json::to_value(v).expect("serializes"), serde_json::Value::String(name));
            }
        }
        same::<Pep8Engine>();
        same::<Pep8Count>();
        same::<ShownFeedback>();
        same::<Layout>();
        same::<Endpoint>();
    }
}
