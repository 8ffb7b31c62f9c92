//! A Hugging Face model folder's safetensors, memory-mapped, with an optional LoRA adapter merged on load.
//!
//! The model code asks a candle `VarBuilder` for each weight by name; [`MergedWeights`] is the backend behind
//! it. It reads the base tensor from the mmapped files and, when the adapter has `lora_A`/`lora_B` for that
//! module, returns `W + scale · B·A` computed in f32, cast to the model's dtype only afterwards.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use serde::Deserialize;

use super::lora::{Adapter, merged};
use crate::BadInput;

/// The safetensors files of a model folder: `model.safetensors`, or the shards that
/// `model.safetensors.index.json` names.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, BadInput> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.is_file() {
        return Err(BadInput(format!(
            "{}: no model.safetensors or model.safetensors.index.json (is this a Hugging Face model folder?)",
            dir.display()
        )));
    }
    #[derive(Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(&index).map_err(|e| BadInput(format!("{}: {e}", index.display())))?;
    let parsed: Index =
        serde_json::from_str(&text).map_err(|e| BadInput(format!("{}:{}: {e}", index.display(), e.line())))?;
    let shards: BTreeSet<&String> = parsed.weight_map.values().collect();
    shards
        .into_iter()
        .map(|shard| {
            let path = dir.join(shard);
            if path.is_file() {
                Ok(path)
            } else {
                Err(BadInput(format!("{}: shard {shard} is missing (partial download?)", index.display())))
            }
        })
        .collect()
}

/// Base weights plus an optional adapter, as a `VarBuilder` backend.
pub struct MergedWeights {
    base: MmapedSafetensors,
    adapter: Option<Adapter>,
}

impl MergedWeights {
    /// Map the files, and check that every adapter module exists in the base with matching shapes.
    pub fn open(files: &[PathBuf], adapter: Option<Adapter>) -> Result<Self, BadInput> {
        // SAFETY: the files are only read; as with every mmap, changing them while we run is the user's fault.
        let base = unsafe { MmapedSafetensors::multi(files) }.map_err(|e| {
            BadInput(format!("{}: not readable safetensors: {}", files[0].display(), super::first_line(&e)))
        })?;
        if let Some(adapter) = &adapter {
            for (module, (a, b)) in adapter.modules() {
                let name = format!("{module}.weight");
                let view = base.get(&name).map_err(|_| {
                    BadInput(format!("{}: module {module} is not in the base model", adapter.path().display()))
                })?;
                let want = view.shape().to_vec();
                let (a, b) = (a.dims().to_vec(), b.dims().to_vec());
                if want.len() != 2 || b[0] != want[0] || a[1] != want[1] {
                    return Err(BadInput(format!(
                        "{}: {module}: lora_B {b:?} · lora_A {a:?} does not fit the base weight {want:?} (an adapter \
                         for another base model?)",
                        adapter.path().display()
                    )));
                }
            }
        }
        Ok(Self { base, adapter })
    }
}

impl SimpleBackend for MergedWeights {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.get_unchecked(name, dtype, dev)?;
        if tensor.shape() != &shape {
            candle_core::bail!("{name} has shape {:?}, the config implies {:?}", tensor.dims(), shape.dims());
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let base = self.base.load(name, dev)?;
        let lora = name.strip_suffix(".weight").and_then(|m| self.adapter.as_ref()?.module(m));
        match lora {
            Some((a, b, scale)) => merged(&base, a, b, scale)?.to_dtype(dtype),
            None => base.to_dtype(dtype),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.base.get(name).is_ok()
    }
}
