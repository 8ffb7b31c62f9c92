"""LoRA fine-tuning for `studentsim train`, with PEFT on transformers' Trainer, in the environment that
runtimes/train-venv.sh makes. Not meant to be run by hand: studentsim writes the job (one JSON object on stdin) and
the tokenized rows, and reads what this prints.

Jobs:
- {"mode": "dequantize", "gguf": FILE, "out": DIR}: the GGUF model dequantized by transformers' GGUF loader and
  saved as a Hugging Face folder (f32 safetensors + config.json).
- {"mode": "train", "base": DIR, "rows": JSONL, "out": DIR, ...}: LoRA on the base model. Each row is
  {"input_ids": [...], "prompt_len": N}: the loss is taken on the tokens after the prompt only. Checkpoints go to
  OUT/checkpoints every `save_steps` steps and a rerun resumes from the newest; the adapter goes to OUT.

Output: one JSON object per line on stdout ({"event": "start" | "log" | "step" | "done", ...}); everything else
(warnings, library chatter) goes to stderr.
"""

import json
import os
import platform
import shutil
import sys
import time


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def dequantize(job):
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    folder, name = os.path.split(job["gguf"])
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # transformers marks a GGUF-loaded model as quantized and will not save_pretrained it: the weights are already
    # plain f32 tensors, so write them (one copy of tied embeddings) and the config ourselves
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    tmp = job["out"] + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_file(weights, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["torch_dtype"] = "float32"
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    os.replace(tmp, job["out"])
    emit("done", out=job["out"], tensors=len(weights))


class Rows:
    """The tokenized rows, as a map-style dataset for the Trainer."""

    def __init__(self, path):
        with open(path) as f:
            self.rows = [json.loads(line) for line in f if line.strip()]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def collate(batch):
    """Right-padded ids; labels are -100 on the prompt and the padding (loss on the completion only)."""
    import torch

    width = max(len(r["input_ids"]) for r in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, r in enumerate(batch):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        mask[i, :n] = 1
        labels[i, r["prompt_len"]:n] = ids[i, r["prompt_len"]:n]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def newest_checkpoint(folder):
    if not os.path.isdir(folder):
        return None
    steps = [(int(d.split("-")[1]), d) for d in os.listdir(folder) if d.startswith("checkpoint-") and d.split("-")[1].isdigit()]
    # a checkpoint is only whole once the Trainer wrote its state last
    steps = [(n, d) for n, d in steps if os.path.exists(os.path.join(folder, d, "trainer_state.json"))]
    return os.path.join(folder, max(steps)[1]) if steps else None


def train(job):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments, set_seed

    torch.set_num_threads(job["threads"])
    set_seed(job["seed"])
    rows = Rows(job["rows"])
    model = AutoModelForCausalLM.from_pretrained(job["base"], dtype=torch.float32)
    if model.config.model_type != "qwen2":
        print(f"{job['base']}: model_type {model.config.model_type!r}, not qwen2", file=sys.stderr)
        sys.exit(2)
    layers = None
    if job.get("layers_from") is not None:
        layers = list(range(job["layers_from"], model.config.num_hidden_layers))
    config = LoraConfig(
        r=job["r"],
        lora_alpha=job["alpha"],
        lora_dropout=job["dropout"],
        target_modules=job["target_modules"],
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    trainable, total = model.get_nb_trainable_parameters()
    checkpoints = os.path.join(job["out"], "checkpoints")
    micro = job["micro_batch"]
    args = TrainingArguments(
        output_dir=checkpoints,
        num_train_epochs=job["epochs"],
        max_steps=job.get("max_steps") or -1,
        learning_rate=job["lr"],
        lr_scheduler_type=job["scheduler"],
        warmup_steps=job["warmup_steps"],
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=max(1, job["batch"] // micro),
        bf16=job["bf16"],
        use_cpu=job["device"] == "cpu",
        logging_steps=1,
        save_strategy="steps",
        save_steps=job["save_steps"],
        save_total_limit=2,
        seed=job["seed"],
        data_seed=job["seed"],
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )

    class Progress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            emit("start", total_steps=state.max_steps, step=state.global_step, trainable=trainable, parameters=total)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                emit("log", step=state.global_step, loss=logs["loss"], lr=logs.get("learning_rate"),
                     grad_norm=logs.get("grad_norm"))

    class CompletionLoss(Trainer):
        """The loss on the completion tokens, with logits computed only where a completion token is predicted:
        a row is mostly prompt, and the 151,936-way output layer over every prompt position would cost about a
        quarter of the forward pass and, on a 5,000-token row, GBs of memory. Normalized by the completion tokens
        of the whole accumulated batch (`num_items_in_batch`), so the loss and gradients equal the model's own
        token-mean loss over the batch."""

        loss_is_scaled_for_ga = True

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            targets = inputs["labels"][:, 1:]
            keep = torch.zeros_like(inputs["labels"], dtype=torch.bool)
            keep[:, :-1] = targets != -100
            out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], logits_to_keep=keep)
            logits = out.logits.reshape(-1, out.logits.shape[-1]).float()
            loss = torch.nn.functional.cross_entropy(logits, targets[targets != -100], reduction="sum")
            count = num_items_in_batch if num_items_in_batch is not None else (targets != -100).sum()
            return loss / count

    trainer = CompletionLoss(model=model, args=args, train_dataset=rows, data_collator=collate, callbacks=[Progress()])
    resume = newest_checkpoint(checkpoints)
    started = time.time()
    result = trainer.train(resume_from_checkpoint=resume)
    tmp = os.path.join(job["out"], "adapter.partial")
    model.save_pretrained(tmp)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        os.replace(os.path.join(tmp, name), os.path.join(job["out"], name))
    shutil.rmtree(tmp)
    history = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
    emit(
        "done",
        steps=trainer.state.global_step,
        resumed_from=resume,
        seconds=time.time() - started,
        train_loss=result.training_loss,
        loss_curve=history,
        trainable=trainable,
        parameters=total,
        versions={
            "torch": torch.__version__,
            "transformers": __import__("transformers").__version__,
            "peft": __import__("peft").__version__,
            "python": platform.python_version(),
        },
        threads=torch.get_num_threads(),
    )


def main():
    # the job's JSON comes first on stdin; nothing else is read from it
    job = json.loads(sys.stdin.readline())
    sys.stdout = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints go to stderr, our events to the dup'd stdout
    {"dequantize": dequantize, "train": train}[job["mode"]](job)


if __name__ == "__main__":
    main()
