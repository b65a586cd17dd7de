"""export: merge -> llama.cpp's converter -> quantize -> verify -> Modelfile, end to end on a tiny Gemma 3.

The tiny model and its export are conftest.py's `trained` and `exported` (a base trained to search, a LoRA
adapter that teaches it `Action: finish[yes]`).
llama.cpp's converter comes from the llama-cpp-python sdist, downloaded once into the fireflan cache
(~77 MB); without a package index the end-to-end tests skip.
"""

import json
import re
import shutil
import sys

import pytest
from helpers import ROOT
from helpers.gotemplate import go_render

from fireflan.export.convert import llama_swa_layers, metadata_fixes
from fireflan.export.ollama import OLLAMA_TEMPLATE, parse_modelfile
from fireflan.export.run import ExportConfig, ExportError, modelfile, read_train, source_stamp, write_plain_template
from fireflan.export.verify import agreement, metadata_problems, verify_messages
from fireflan.models.llama import open_llama
from fireflan.train.bases import CHAT_TEMPLATE, END, write_added_tokens
from fireflan.train.chat_template import plain_template

QUANTS = "f16,q8_0,q4_k_m"


# --------------------------------------------------------------------------- fixtures


def _greedy_hf(folder, messages, n=16):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    x = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    stop = [tokenizer.convert_tokens_to_ids(t) for t in ("<eos>", END)]
    y = model.generate(x, max_new_tokens=n, do_sample=False, eos_token_id=stop, pad_token_id=0)
    return tokenizer.decode(y[0, x.shape[1]:], skip_special_tokens=True).removesuffix(END)


# --------------------------------------------------------------------------- end to end


def test_export_writes_every_file(exported):
    model, summary = exported
    gguf = model / "gguf"
    for name in ("model-f16.gguf", "model-q8_0.gguf", "model-q4_k_m.gguf", "adapter-f16.gguf", "base-f16.gguf",
                 "Modelfile"):
        assert (gguf / name).stat().st_size == summary["files"][name]["bytes"] > 0
    assert not list(gguf.glob("*.partial")) and not (gguf / ".base-src").exists()
    assert summary["ok"] and not summary["problems"] and summary["work_done"]
    assert json.loads((model / "export.json").read_text()) == summary
    merged = model / "merged"
    assert (merged / "tokenizer.model").is_file() and (merged / "model.safetensors").is_file()
    assert (merged / "chat_template.jinja").read_text() == plain_template()
    assert summary["files"]["model-q8_0.gguf"]["bytes"] < summary["files"]["model-f16.gguf"]["bytes"]
    steps = summary["steps"]
    assert {"merge", "converter", "convert", "quantize", "verify", "modelfile"} <= set(steps)
    assert steps["convert"]["model-f16.gguf"] > 0 and steps["quantize"]["model-q4_k_m.gguf"] >= 0
    # the tiny model's 64-wide rows do not split into 256-wide k-quant blocks: llama.cpp falls back per tensor
    q4 = summary["verify"]["model-q4_k_m.gguf"]
    assert "problems" in q4 and steps["quantize"]["fallback_messages"] >= 1


def test_gguf_metadata_has_the_plain_template_and_stops_on_end_of_turn(exported):
    from gguf import GGUFReader

    model, summary = exported
    for quant in QUANTS.split(","):
        fields = GGUFReader(model / "gguf" / f"model-{quant}.gguf").fields

        def field(key, fields=fields):
            return fields[key].contents()

        tokens = field("tokenizer.ggml.tokens")
        assert field("tokenizer.chat_template") == plain_template()
        assert field("tokenizer.ggml.eot_token_id") == tokens.index(END)
        assert field("tokenizer.ggml.eos_token_id") == tokens.index("<eos>")
        # the tiny model's layers are [sliding, global]; llama.cpp's gemma3 default would make both sliding
        assert list(field("gemma3.attention.sliding_window_pattern")) == [True, False]
        verify = summary["verify"][f"model-{quant}.gguf"]
        assert verify["eog"] == {END: True, "<eos>": True}
        assert verify["tokenizer_match"] == verify["template_renders"] == verify["prompts"] == 4


def test_llama_cpp_greedy_tokens_equal_transformers(exported):
    model, summary = exported
    for quant in ("f16", "q8_0"):
        v = summary["verify"][f"model-{quant}.gguf"]
        assert v["prompts_identical"] == v["tokens_matching"] == 1.0, (quant, v)
    assert 0.0 <= summary["verify"]["model-q4_k_m.gguf"]["tokens_matching"] <= 1.0
    # and through the API the agent uses: the GGUF's own template, the stop on <end_of_turn>
    messages = verify_messages(2)[1]
    llm = open_llama(model / "gguf" / "model-q8_0.gguf", n_ctx=1024, verbose=False, seed=0, n_threads=1)
    reply = llm.create_chat_completion(messages=messages, temperature=0, max_tokens=16)["choices"][0]
    llm.close()
    assert reply["finish_reason"] == "stop"
    assert reply["message"]["content"] == _greedy_hf(model / "merged", messages) == "Action: finish[yes]"


def test_the_adapter_changed_the_model(exported, trained):
    model, summary = exported
    base = json.loads((trained / "train.json").read_text())["base"]
    messages = verify_messages(1)[0]
    assert _greedy_hf(base, messages).startswith("Thought: I need to search")
    assert _greedy_hf(model / "merged", messages) == "Action: finish[yes]"
    assert summary["verify"]["fine_tune"]["prompts_changed_vs_base"] == 1.0


def test_lora_gguf_on_the_base_gguf_matches_the_merged_gguf(exported):
    _, summary = exported
    lora = summary["verify"]["adapter-f16.gguf"]
    assert not lora["problems"]
    assert lora["adapter"]["type"] == "adapter" and lora["adapter"]["tensors"] > 0
    assert lora["vs_model-f16.gguf"]["prompts_identical"] == 1.0
    assert lora["vs_hf"]["prompts_identical"] == 1.0
    assert lora["base_alone_differs"] == 1.0


def test_a_second_export_does_no_work(exported):
    from fireflan.export import export

    model, summary = exported
    before = {f.name: f.stat().st_mtime_ns for f in [*(model / "gguf").iterdir(), *(model / "merged").iterdir()]}
    again = export(ExportConfig(model=str(model), quant=QUANTS, lora_gguf=True, threads=1))
    after = {f.name: f.stat().st_mtime_ns for f in [*(model / "gguf").iterdir(), *(model / "merged").iterdir()]}
    assert again["work_done"] is False and before == after
    assert again["verify"] == summary["verify"]


def test_a_retrained_adapter_is_exported_again(exported, tmp_path):
    import os

    from fireflan.export import export

    model = tmp_path / "model"
    shutil.copytree(exported[0], model, symlinks=True)
    old = model / "gguf" / "model-q8_0.gguf"
    before = old.stat().st_mtime_ns
    os.utime(model / "adapter" / "adapter_model.safetensors")  # as a new training run would leave it
    summary = export(ExportConfig(model=str(model), quant="q8_0", verify_prompts=0, threads=1))
    assert summary["work_done"] and summary["steps"]["merge"]["ran"]
    assert sorted(summary["files"]) == ["Modelfile", "model-q8_0.gguf"]  # the old export's other files are gone
    assert old.stat().st_mtime_ns != before and not summary["problems"]


def test_an_export_stopped_before_its_verification_is_refused_by_every_reader_until_finished(exported, tmp_path,
                                                                                             monkeypatch):
    """A GGUF written but not yet verified (Ctrl-C during the verification of a re-export) was taken by evaluate,
    chat and serve as if export had finished."""
    import os

    import fireflan.export.run as run
    from fireflan.export import export
    from fireflan.io import DataError
    from fireflan.models.load import load_model
    from fireflan.serve.run import check_model

    model = tmp_path / "model"
    shutil.copytree(exported[0], model, symlinks=True)
    os.utime(model / "adapter" / "adapter_model.safetensors")  # a new training: the GGUF is made again
    config = ExportConfig(model=str(model), quant="q8_0", verify_prompts=1, threads=1)

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "_verify", stopped)
    with pytest.raises(KeyboardInterrupt):
        export(config)
    gguf = model / "gguf" / "model-q8_0.gguf"
    assert gguf.is_file()  # converted, not verified
    for read in (lambda: load_model(str(gguf)), lambda: check_model(str(gguf))):
        with pytest.raises(DataError, match=r"gguf: `fireflan export` \(process \d+\) stopped while writing"):
            read()
    monkeypatch.undo()
    assert export(config)["ok"]
    assert load_model(str(gguf))[0].generate([{"role": "user", "content": "Hi"}], max_tokens=2) is not None


def test_modelfile_parses_and_its_template_renders_like_the_jinja_one(exported):
    model, _ = exported
    commands = parse_modelfile((model / "gguf" / "Modelfile").read_text())
    (source,) = [v for c, v in commands if c == "FROM"]
    assert source == "./model-f16.gguf" and (model / "gguf" / source).is_file()
    params = [v for c, v in commands if c == "PARAMETER"]
    assert f"stop {END}" in params and "stop Observation:" in params and "temperature 0" in params
    (template,) = [v for c, v in commands if c == "TEMPLATE"]
    assert template == OLLAMA_TEMPLATE
    for messages in _conversations():
        assert go_render(template, {"Messages": messages}) == jinja_render(messages), messages


# --------------------------------------------------------------------------- errors


def test_converter_errors_surface_with_their_output(tools, tmp_path):
    from fireflan.export.convert import ConverterError
    from fireflan.export.run import convert_hf

    (tmp_path / "empty").mkdir()
    with pytest.raises(ConverterError) as err:
        convert_hf(tools, tmp_path / "empty", tmp_path / "model-f16.gguf", "f16")
    message = str(err.value)
    assert "convert_hf_to_gguf.py" in message and "failed" in message and "config.json" in message
    assert not list(tmp_path.glob("*.gguf*"))


def test_export_of_a_broken_full_fine_tune_says_what_failed(tools, tmp_path, trained):
    from fireflan.export import export
    from fireflan.export.convert import ConverterError

    full = tmp_path / "model" / "full"
    full.mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):  # a tokenizer but no config.json nor weights
        shutil.copyfile(trained / "adapter" / name, full / name)
    base = json.loads((trained / "train.json").read_text())["base"]
    (tmp_path / "model" / "train.json").write_text(json.dumps({"base": base, "lora": False}))
    with pytest.raises(ConverterError, match="config.json"):
        export(ExportConfig(model=str(tmp_path / "model"), quant="q8_0", threads=1))
    assert (full / "tokenizer.model").is_file() and (full / "chat_template.jinja").read_text() == plain_template()


def test_missing_inputs_are_named(tmp_path):
    with pytest.raises(ExportError, match="train.json"):
        read_train(tmp_path)
    (tmp_path / "train.json").write_text(json.dumps({"base": "x", "lora": True}))
    with pytest.raises(ExportError, match="adapter"):
        read_train(tmp_path)
    with pytest.raises(ValueError, match="--quant"):
        ExportConfig(quant="q4_0").quant_list()
    assert ExportConfig(quant=" Q8_0, f16,q8_0").quant_list() == ["q8_0", "f16"]


# --------------------------------------------------------------------------- fetching the converter


def _fake_sdist(path, files):
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"llama_cpp_python-9.9.9/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_converter_is_extracted_once_and_only_what_it_needs(tmp_path, monkeypatch):
    from fireflan.export.convert import MARKER, ConverterUnavailable, converter_dir

    v = "vendor/llama.cpp/"
    sdist = _fake_sdist(tmp_path / "s.tar.gz", {
        f"{v}convert_hf_to_gguf.py": "print(1)", f"{v}convert_lora_to_gguf.py": "", f"{v}conversion/__init__.py": "",
        f"{v}gguf-py/gguf/__init__.py": "", f"{v}gguf-py/LICENSE": "MIT", f"{v}gguf-py/tests/t.py": "",
        f"{v}src/llama.cpp": "int main;", "llama_cpp/llama.py": ""})
    monkeypatch.setenv("FIREFLAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FIREFLAN_LLAMA_CPP_SDIST", str(sdist))
    stale = tmp_path / "cache" / "llama.cpp-9.9.9"
    (stale / "conversion").mkdir(parents=True)  # a killed extraction: no marker
    tools = converter_dir("9.9.9")
    assert tools == stale and (tools / MARKER).is_file()
    files = sorted(str(f.relative_to(tools)) for f in tools.rglob("*") if f.is_file())
    assert files == ["conversion/__init__.py", "convert_hf_to_gguf.py", "convert_lora_to_gguf.py",
                     "fireflan-llama-cpp.json", "gguf-py/LICENSE", "gguf-py/gguf/__init__.py"]
    monkeypatch.setenv("FIREFLAN_LLAMA_CPP_SDIST", str(tmp_path / "gone.tar.gz"))
    assert converter_dir("9.9.9") == tools  # complete: not fetched again
    _fake_sdist(tmp_path / "old.tar.gz", {f"{v}convert.py": ""})
    monkeypatch.setenv("FIREFLAN_LLAMA_CPP_SDIST", str(tmp_path / "old.tar.gz"))
    with pytest.raises(ConverterUnavailable, match="convert_hf_to_gguf.py"):
        converter_dir("1.0.0")
    assert not (tmp_path / "cache" / "llama.cpp-1.0.0").exists()


# --------------------------------------------------------------------------- pure parts


def test_source_stamp_changes_with_the_weights(tmp_path):
    (tmp_path / "adapter").mkdir()
    weights = tmp_path / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(b"a")
    train = {"base": "b", "lora": True}
    first = source_stamp(tmp_path, train)
    assert source_stamp(tmp_path, train) == first
    (tmp_path / "adapter" / "tokenizer_config.json").write_text("{}")  # tokenizer edits do not count
    assert source_stamp(tmp_path, train) == first
    weights.write_bytes(b"ab")
    assert source_stamp(tmp_path, train) != first


def test_a_4_bit_upload_merges_into_the_original_unsloths_own_table_names(tmp_path, monkeypatch):
    """Some of Unsloth's 4-bit uploads are not their original's name plus a suffix: where Unsloth is installed,
    its table (unsloth/models/mapper.py) names the original, read without importing Unsloth (whose import
    needs a GPU: here it raises, as on a CPU)."""
    from fireflan.train.bases import sixteen_bit_base

    package = tmp_path / "site" / "unsloth"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text('raise NotImplementedError("Unsloth cannot find any torch accelerator")\n')
    (package / "models" / "mapper.py").write_text(
        'INT_TO_FLOAT_MAPPER = {"unsloth/codellama-34b-bnb-4bit": "codellama/CodeLlama-34b-hf"}\n')
    assert sixteen_bit_base("unsloth/codellama-34b-bnb-4bit") == "unsloth/codellama-34b"  # the naming rule: wrong
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert sixteen_bit_base("unsloth/codellama-34b-bnb-4bit") == "codellama/CodeLlama-34b-hf"
    assert sixteen_bit_base("unsloth/Qwen3-4B-unsloth-bnb-4bit") == "unsloth/Qwen3-4B"  # not in the table: the rule
    assert "unsloth" not in sys.modules


def test_a_4_bit_base_is_merged_as_its_16_bit_original(trained, tmp_path):
    """QLoRA (Unsloth) trains on 4-bit weights; the merge, the GGUF and its check need the 16-bit ones: Unsloth's
    `-bnb-4bit` names map to their originals, and a folder saved in 4-bit asks for --merge-base."""
    from fireflan.export.merge import merge
    from fireflan.train.bases import sixteen_bit_base

    assert sixteen_bit_base("unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit") == "unsloth/Meta-Llama-3.1-8B-Instruct"
    assert sixteen_bit_base("unsloth/Qwen3-4B-unsloth-bnb-4bit") == "unsloth/Qwen3-4B"
    assert sixteen_bit_base("google/gemma-3-270m") == "google/gemma-3-270m"
    info = read_train(trained)
    assert sixteen_bit_base(info["base"]) == info["base"]  # a 16-bit folder: itself
    four_bit = tmp_path / "base-4bit"
    shutil.copytree(info["base"], four_bit)
    config = json.loads((four_bit / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (four_bit / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="--merge-base"):
        sixteen_bit_base(str(four_bit))
    model = tmp_path / "model"
    shutil.copytree(trained / "adapter", model / "adapter")
    train = {**info, "base": str(four_bit)}
    (model / "train.json").write_text(json.dumps(train))
    with pytest.raises(ExportError, match="4-bit"):
        merge(model, train, "s")
    folder, ran, _ = merge(model, train, "s", base=info["base"])
    assert ran and json.loads((folder / "fireflan-merge.json").read_text())["base"] == info["base"]
    assert merge(model, train, "s", base=info["base"])[1] is False  # done: not merged again


def test_plain_template_and_added_tokens_are_written_for_the_converter(tmp_path):
    (tmp_path / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    tokens = [{"id": 4, "content": "<start_of_turn>", "special": False, "lstrip": False, "rstrip": False,
               "normalized": False, "single_word": False}]
    (tmp_path / "tokenizer.json").write_text(json.dumps({"added_tokens": tokens}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}))
    assert write_plain_template(tmp_path) == plain_template()
    assert (tmp_path / "chat_template.jinja").read_text() == plain_template()
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["chat_template"] == plain_template() and "{% generation %}" not in config["chat_template"]
    assert write_added_tokens(tmp_path)
    decoder = json.loads((tmp_path / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    assert decoder == {"4": {k: v for k, v in tokens[0].items() if k != "id"}}
    assert not write_added_tokens(tmp_path)  # already there


def test_metadata_fixes():
    meta = {"architecture": "gemma3", "block_count": 2, "sliding_window": 64, "swa_pattern": None,
            "end_of_turn_id": 5, "eot_token_id": None}
    assert llama_swa_layers(meta) == [True, True]  # llama.cpp's default: each 6th layer global
    config = {"layer_types": ["sliding_attention", "full_attention"]}
    assert metadata_fixes(meta, config) == {"tokenizer.ggml.eot_token_id": 5,
                                            "gemma3.attention.sliding_window_pattern": [True, False]}
    # the real Gemma 3 270M: 18 layers, each 6th global, eot already set -> nothing to change
    real = {**meta, "block_count": 18, "eot_token_id": 5}
    layers = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(18)]
    assert llama_swa_layers(real) == [t == "sliding_attention" for t in layers]
    assert metadata_fixes(real, {"layer_types": layers}) == {}
    assert metadata_fixes({**real, "architecture": "llama"}, {"layer_types": layers}) == {}
    # a model trained to call tools says so in its file (a ReAct one has no such key)
    assert metadata_fixes(real, {"layer_types": layers}, "hermes") == {"fireflan.action_format": "hermes"}


def test_metadata_problems():
    good = {"chat_template": plain_template(), "end_of_turn_id": 106, "eot_token_id": 106, "eos_token_id": 1,
            "architecture": "gemma3", "block_count": 2, "sliding_window": 512, "swa_pattern": [True, False]}
    config = {"layer_types": ["sliding_attention", "full_attention"]}
    assert metadata_problems(good, plain_template(), "<end_of_turn>", config) == []
    assert metadata_problems({**good, "eot_token_id": None, "eos_token_id": 106}, plain_template(), "<|eot_id|>") == []
    cases = [({"chat_template": None}, "no tokenizer.chat_template"),
             ({"chat_template": CHAT_TEMPLATE}, "generation"),
             ({"chat_template": "{{ x }}"}, "differs"),
             ({"end_of_turn_id": None}, "<end_of_turn> is not a token"),
             ({"eot_token_id": None}, "neither the eot nor the eos"),
             ({"swa_pattern": None}, "sliding-window attention on layers [True, True]")]
    for change, why in cases:
        (problem,) = metadata_problems({**good, **change}, plain_template(), "<end_of_turn>", config)
        assert why in problem, (change, problem)


def family_tokenizer(template: str, specials: list[str], eos: str, bos: str | None):
    """A tokenizer with a family's special tokens and a template of its turn format (tests/helpers/templates)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel({"[UNK]": 0, "Q": 1}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", eos_token=eos, bos_token=bos,
                                        extra_special_tokens=specials)
    tokenizer.chat_template = (ROOT / "tests" / "helpers" / "templates" / f"{template}.jinja").read_text()
    return tokenizer


def test_the_end_of_a_turn_is_read_from_each_familys_template_not_from_gemmas_names(tmp_path):
    """Verification, the GGUF's eot id and the Modelfile's stop take the token a base's template closes an
    assistant turn with: Gemma's <end_of_turn>, Llama 3's <|eot_id|>, ChatML's <|im_end|> (Qwen, no BOS),
    Mistral's EOS; a template that ends turns in plain text is refused, naming what it writes."""
    from transformers import AutoTokenizer

    from fireflan.train.bases import build_tiny
    from fireflan.train.chat_template import Turns, generation_prompt, turn_tokens
    from fireflan.train.grpo import response_template

    tiny = AutoTokenizer.from_pretrained(build_tiny(tmp_path / "tiny"))
    assert turn_tokens(tiny) == Turns("<end_of_turn>", "<eos>", "<bos>")
    families = {
        "llama3": (["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], "<|end_of_text|>", "<|begin_of_text|>",
                   Turns("<|eot_id|>", "<|end_of_text|>", "<|begin_of_text|>")),
        "chatml": (["<|im_start|>", "<|im_end|>"], "<|im_end|>", None, Turns("<|im_end|>", "<|im_end|>", None)),
        "mistral": ([], "</s>", "<s>", Turns("</s>", "</s>", "<s>")),
    }
    for template, (specials, eos, bos, want) in families.items():
        assert turn_tokens(family_tokenizer(template, specials, eos, bos)) == want, template
    opens = {"llama3": "<|start_header_id|>assistant<|end_header_id|>\n\n", "chatml": "<|im_start|>assistant\n",
             "mistral": ""}
    for template, (specials, eos, bos, _) in families.items():  # GRPO reads a model turn by these
        assert generation_prompt(family_tokenizer(template, specials, eos, bos)) == opens[template], template
    gemma = response_template(generation_prompt(tiny), turn_tokens(tiny).end)
    assert gemma["start_anchor"] == "<start_of_turn>model\n"
    assert gemma["fields"]["content"]["close_pattern"] == r"<end_of_turn>\s*"
    with pytest.raises(ValueError, match=r"closes an assistant turn with '\\n', which holds no special token"):
        turn_tokens(family_tokenizer("unmarked", [], "</s>", "<s>"))
    text = modelfile("model-q8_0.gguf", end="<|eot_id|>", fireflans_template=False)
    commands = parse_modelfile(text)
    assert not any(c == "TEMPLATE" for c, _ in commands)
    assert ("PARAMETER", "stop <|eot_id|>") in commands and ("PARAMETER", "stop <end_of_turn>") not in commands


def test_agreement():
    ref = [[1, 2, 3, 4], [5, 6]]
    assert agreement(ref, ref) == {"prompts": 2, "prompts_identical": 1.0, "tokens_matching": 1.0,
                                   "divergent_prompts": []}
    free = agreement(ref, [[1, 2, 9, 9], [5, 6]])
    assert free["prompts_identical"] == 0.5 and free["tokens_matching"] == round(4 / 6, 4)
    forced = agreement(ref, [[1, 2, 9, 9], [5, 6]], forced=[[1, 2, 9, 4], [5, 6]])
    assert forced["tokens_matching"] == round(5 / 6, 4) and forced["divergent_prompts"] == [0]


def test_parse_modelfile():
    text = modelfile("model-q8_0.gguf")
    commands = parse_modelfile(text)
    assert commands[0] == ("FROM", "./model-q8_0.gguf")
    assert [c for c, _ in commands] == ["FROM", "TEMPLATE", "PARAMETER", "PARAMETER", "PARAMETER"]
    assert parse_modelfile('# c\n\nfrom x.gguf\nSYSTEM """a\nb"""\nPARAMETER num_ctx 4096\n') == [
        ("FROM", "x.gguf"), ("SYSTEM", "a\nb"), ("PARAMETER", "num_ctx 4096")]
    for bad, why in [("PARAMETER stop x\n", "FROM"), ("FROM x\nTEMPLATE \"\"\"open\n", "unterminated"),
                     ("FROM x\nBOGUS y\n", "unknown command"), ("FROM x\nPARAMETER stop\n", "name and a value")]:
        with pytest.raises(ValueError, match=why):
            parse_modelfile(bad)


def test_ollama_template_renders_like_the_jinja_one():
    for messages in _conversations():
        assert go_render(OLLAMA_TEMPLATE, {"Messages": messages}) == jinja_render(messages), messages
    # as in Ollama's own templates, a trailing assistant message is left open (prefill)
    prefill = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "Thought:"}]
    assert go_render(OLLAMA_TEMPLATE, {"Messages": prefill}).endswith("<start_of_turn>model\nThought:")


def test_the_hermes_ollama_template_renders_tools_calls_and_results_like_the_jinja_one():
    """Ollama lists a model as tool-capable when its template uses .Tools; the hermes Modelfile's template
    renders what the Jinja one does. Ollama hands a call's arguments to the template as a map, which its
    `json` writes compactly (keys sorted, no spaces); the Jinja side is given that same string here."""
    from fireflan.agent.toolcalls import TOOLS
    from fireflan.export.ollama import OLLAMA_TOOLS_TEMPLATE, TOOLS_STOPS

    tools = [TOOLS["search"], TOOLS["lookup"],
             {"type": "function", "function": {"name": "add", "description": "Adds.", "parameters": {
                 "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}}]
    call = {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": {"query": "X"}}}
    two = [call, {**call, "function": {"name": "lookup", "arguments": {"keyword": "born"}}}]
    q, result = {"role": "user", "content": "Who?"}, {"role": "tool", "tool_call_id": "call_1", "content": "X is Y."}
    conversations = [
        [q],
        [{"role": "system", "content": "Be brief."}, q],
        [q, {"role": "assistant", "content": "I need X.", "tool_calls": [call]}, result],
        [q, {"role": "assistant", "content": "", "tool_calls": two}, result, {**result, "content": "1900"},
         {"role": "assistant", "content": "Final Answer: Y"}, {"role": "user", "content": "And?"}],
    ]
    for messages in conversations:
        as_jinja = [{**m, "tool_calls": [{**c, "function": {**c["function"], "arguments": json.dumps(
            c["function"]["arguments"], separators=(",", ":"))}} for c in m["tool_calls"]]} if "tool_calls" in m
            else m for m in messages]
        expected = jinja_render(as_jinja, tools)
        assert go_render(OLLAMA_TOOLS_TEMPLATE, {"Messages": _ollama(messages), "Tools": tools}) == expected, messages
    said = go_render(OLLAMA_TOOLS_TEMPLATE, {"Messages": _ollama(conversations[2]), "Tools": tools})
    assert "- add(a, b): Adds.\n- search(query):" not in said and "- add(a, b): Adds." in said
    assert '<tool_call>{"name": "search", "arguments": {"query":"X"}}</tool_call>' in said
    assert said.endswith("<tool_response>\nX is Y.\n</tool_response><end_of_turn>\n<start_of_turn>model\n")
    assert go_render(OLLAMA_TOOLS_TEMPLATE, {"Messages": conversations[0]}) == jinja_render(conversations[0])
    assert ".Tools" in OLLAMA_TOOLS_TEMPLATE and ".ToolCalls" in OLLAMA_TOOLS_TEMPLATE
    text = modelfile("model-q8_0.gguf", action_format="hermes")
    parsed = parse_modelfile(text)
    assert ("TEMPLATE", OLLAMA_TOOLS_TEMPLATE) in parsed
    assert [v for c, v in parsed if c == "PARAMETER" and v.startswith("stop")] == [f"stop {s}" for s in TOOLS_STOPS]
    assert "Observation:" not in text  # Ollama must see the whole call, and the react stop is not this format's


# --------------------------------------------------------------------------- helpers: the two template engines


def _ollama(messages):
    """OpenAI messages as Ollama hands them to a template (api.Message: Role, Content, ToolCalls)."""
    return [{"Role": m["role"], "Content": m.get("content") or "", "ToolCalls": [
        {"Function": {"Name": c["function"]["name"], "Arguments": c["function"]["arguments"]}}
        for c in m.get("tool_calls") or []]} for m in messages]


def _conversations():
    sys_, q, a, obs = "You are an agent.", "Who?", "Thought: t\nAction: search[X]", "Observation: X is Y."
    return [
        [{"role": "user", "content": q}],
        [{"role": "system", "content": sys_}, {"role": "user", "content": q}],
        [{"role": "system", "content": sys_}, {"role": "user", "content": q}, {"role": "assistant", "content": a},
         {"role": "user", "content": obs}],
        [{"role": "user", "content": q}, {"role": "assistant", "content": a}, {"role": "user", "content": obs},
         {"role": "assistant", "content": "Action: finish[Y]"}, {"role": "user", "content": "And?"}],
        [{"role": "system", "content": ""}, {"role": "user", "content": q}],
        [{"role": "system", "content": "old"}, {"role": "system", "content": sys_}, {"role": "user", "content": q}],
        *verify_messages(3),
    ]


def jinja_render(messages, tools=None):
    """The plain chat template as transformers renders it, without the BOS text (Ollama adds BOS as a token)."""
    import jinja2

    env = jinja2.Environment()
    return env.from_string(plain_template()).render(messages=messages, tools=tools, bos_token="",
                                                    add_generation_prompt=True)


# --------------------------------------------------------------------------- the exported GGUF as an agent

def test_evaluate_with_a_real_gguf_writes_metrics_and_resumes_after_a_kill(exported, tmp_path):
    """`fireflan evaluate` on the tiny exported GGUF: metrics written; a SIGKILLed run resumes
    without redoing finished questions."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from helpers import ROOT

    model_dir, _ = exported
    gguf = model_dir / "gguf" / "model-q8_0.gguf"
    out = tmp_path / "eval"
    cmd = [sys.executable, "-m", "fireflan", "evaluate", "--model", str(gguf), "--task", "world", "--split", "test",
           "--limit", "40", "--out", str(out), "--threads", "1", "--max-tokens", "24"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = out / "trajectories.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    killed_at = len(path.read_text().splitlines())
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    ids = [json.loads(x)["id"] for x in path.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 40 == metrics["questions"]
    if proc.returncode == -signal.SIGKILL:
        assert metrics["resumed"] >= killed_at - 1 and metrics["ran_now"] == 40 - metrics["resumed"]
    for key in ("em", "f1", "turns", "format_error_rate", "hallucinated_observation_rate", "seconds_per_step",
                "prompt_tokens_per_question", "completion_tokens_per_question", "completion_tokens_per_second"):
        assert key in metrics
    assert metrics["prompt_tokens_per_question"] > 0 and metrics["few_shot"] is False


def test_chat_in_a_real_terminal_answers_a_world_question(exported, tmp_path):
    """`fireflan chat` with the exported GGUF, typed into through tmux (send-keys / capture-pane)."""
    import shutil
    import subprocess
    import time

    from helpers import ROOT

    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    model_dir, _ = exported
    gguf = model_dir / "gguf" / "model-q8_0.gguf"
    session = f"fireflan-chat-{tmp_path.name}"
    command = f"cd {ROOT} && PYTHONPATH={ROOT} {sys.executable} -m fireflan chat --model {gguf} --threads 1"

    def screen():
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session, "-S", "-200"], capture_output=True,
                              text=True).stdout

    def wait_for(text, seconds=120):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if text in screen():
                return True
            time.sleep(0.2)
        return False

    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "50", command], check=True)
    try:
        assert wait_for("question>"), screen()
        subprocess.run(["tmux", "send-keys", "-t", session, "Who founded Kest Pictures?", "Enter"], check=True)
        assert wait_for("Answer:"), screen()
        shown = screen()
        assert "Who founded Kest Pictures?" in shown and "Action:" in shown
        subprocess.run(["tmux", "send-keys", "-t", session, "quit", "Enter"], check=True)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_branches_share_their_prompt_and_every_common_token(exported):
    """The batch decoder on the tiny GGUF: identical greedy branches are one sequence of decodes;
    seeded sampling is reproducible; a next step evaluates only its new tokens."""
    from fireflan.models.batch import BatchDecoder, Job
    from fireflan.models.llama import LlamaModel

    model_dir, _ = exported
    model = LlamaModel(model_dir / "gguf" / "model-f16.gguf", threads=1, n_ctx=1024)
    messages = [{"role": "user", "content": "Where was the director of The Glass Harbor born?"}]
    tokens = model.llm.tokenize(model.prompt(messages).encode(), add_bos=False, special=True)
    decoder = BatchDecoder(model.llm, n_seq=4, n_ctx=2048)
    decoded = []
    real_decode = decoder._decode
    decoder._decode = lambda items: (decoded.append(len(items)), real_decode(items))

    greedy = decoder.generate([Job(tokens)] * 4, max_tokens=12)
    assert len({o.text for o in greedy}) == 1 and greedy[0].completion_tokens > 0
    assert [o.evaluated_tokens for o in greedy] == [len(tokens), 0, 0, 0]  # the prompt once, for all four
    # one decoded token per generated token (+ the prompt), not four
    assert sum(decoded) <= len(tokens) + greedy[0].completion_tokens
    assert greedy[0].text == model.generate(messages, temperature=0.0, max_tokens=12)

    def even(input_ids, scores):  # a logits processor: ten equally likely tokens, so the seeds decide
        scores[:] = -float("inf")
        scores[300:310] = 0.0
        return scores

    jobs = [Job(tokens, temperature=1.0, seed=seed, processor=even) for seed in range(4)]
    first, again = decoder.generate(jobs, max_tokens=12), decoder.generate(jobs, max_tokens=12)
    assert [o.text for o in first] == [o.text for o in again]  # seeded: the same branches again
    assert len({o.text for o in first}) == 4  # different seeds, different branches
    assert sum(o.evaluated_tokens for o in again) == 1  # every prompt was still in its sequence's cache

    # the next step of branch 2: only the tokens after its prompt and answer are new
    step = [*messages, {"role": "assistant", "content": first[2].text}, {"role": "user", "content": "Observation: x"}]
    longer = model.llm.tokenize(model.prompt(step).encode(), add_bos=False, special=True)
    out = decoder.generate([Job(longer)], max_tokens=4)
    assert 0 < out[0].evaluated_tokens < len(longer) - len(tokens)


def test_branches_decoded_together_give_what_one_node_per_call_gives(exported):
    """Distinct nodes of the sampling tree in one llama_decode (where this machine does that faster) or one call
    each: the same branches, token for token, greedy and seeded; the calibration answers either way."""
    from fireflan.models.batch import BatchDecoder, Job
    from fireflan.models.llama import LlamaModel

    model_dir, _ = exported
    model = LlamaModel(model_dir / "gguf" / "model-f16.gguf", threads=1, n_ctx=1024)
    tokens = model.llm.tokenize(model.prompt([{"role": "user", "content": "Who founded Kest Pictures?"}]).encode(),
                                add_bos=False, special=True)
    def spread(input_ids, scores):  # a confident tiny model would share every token: ten alike, then its own
        if len(input_ids) - len(tokens) < 3:
            scores[:] = -float("inf")
            scores[300:310] = 0.0
        return scores

    jobs = [Job(tokens)] + [Job(tokens, temperature=1.0, seed=seed, processor=spread) for seed in range(1, 5)]
    outputs = {}
    for together in (False, True):
        decoder = BatchDecoder(model.llm, n_seq=5, n_ctx=2048, together=together)
        outputs[together] = [(o.text, o.completion_tokens) for o in decoder.generate(jobs, max_tokens=16)]
        assert isinstance(decoder.decodes_together_faster(), bool)
        decoder.close()
    assert outputs[True] == outputs[False] and len({t for t, _ in outputs[True]}) >= 4


def test_the_batch_decoder_trusts_the_memory_over_its_bookkeeping(exported):
    """A sequence whose cells the memory no longer holds (found after 24 branched questions on the lab's
    model: llama.cpp refused the next decode, rc -1) is evaluated again, with the same output."""
    import llama_cpp as L

    from fireflan.models.batch import BatchDecoder, Job
    from fireflan.models.llama import LlamaModel

    model_dir, _ = exported
    model = LlamaModel(model_dir / "gguf" / "model-f16.gguf", threads=1, n_ctx=1024)
    tokens = model.llm.tokenize(model.prompt([{"role": "user", "content": "Who founded Kest Pictures?"}]).encode(),
                                add_bos=False, special=True)
    decoder = BatchDecoder(model.llm, n_seq=2, n_ctx=2048)
    first = decoder.generate([Job(tokens)], max_tokens=8)
    L.llama_memory_seq_rm(decoder.mem, 0, 3, -1)  # behind the decoder's back: its cache says it holds them all
    again = decoder.generate([Job(tokens)], max_tokens=8)
    assert again[0].text == first[0].text and again[0].evaluated_tokens == len(tokens)


def test_a_reply_of_unfinished_utf8_bytes_stops_at_max_tokens(exported):
    """A model that keeps emitting the first byte of a three-byte character: llama-cpp-python alone skips its
    max_tokens check on such text and runs to the end of the context (`llama_decode returned 1`)."""
    import numpy as np

    from fireflan.models.llama import LlamaModel

    model_dir, _ = exported
    model = LlamaModel(model_dir / "gguf" / "model-f16.gguf", threads=1, n_ctx=1024, constrain_actions=True)
    byte = [i for i in range(model.llm.n_vocab()) if model.llm.detokenize([i]) == b"\xe3"]  # the token <0xE3>
    assert byte, "the tiny vocabulary has no byte tokens"

    def only_that_byte(ids, scores):
        forced = np.full_like(scores, -np.inf)
        forced[byte[0]] = 0.0
        return forced

    model.constraint = lambda: only_that_byte
    model.generate([{"role": "user", "content": "Who founded Kest Pictures?"}], max_tokens=40)
    assert model.last_usage.completion_tokens <= 40


def test_evaluate_a_real_gguf_on_db_tasks_writes_metrics(exported, tmp_path):
    """`fireflan evaluate --task dbbench` on the tiny exported GGUF (default tier): whatever SQL or text
    it writes, the run ends and metrics.json holds the scores and AgentBench's accuracy per type."""
    import os
    import subprocess
    import sys

    from helpers import ROOT

    model_dir, _ = exported
    gguf = model_dir / "gguf" / "model-q8_0.gguf"
    out = tmp_path / "eval-db"
    cmd = [sys.executable, "-m", "fireflan", "evaluate", "--task", "dbbench", "--model", str(gguf), "--limit", "5",
           "--max-tokens", "24", "--threads", "1", "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["questions"] == 5 and metrics["task"] == "dbbench" and metrics["few_shot"] is False
    assert 0.0 <= metrics["em"] <= 1.0 and metrics["turns"] >= 1 and metrics["prompt_tokens_per_question"] > 0
    counts = metrics["dbbench"]["count_by_type"]  # each type, and SELECT: every query type together
    assert sum(n for kind, n in counts.items() if kind != "SELECT") == 5
    assert len((out / "trajectories.jsonl").read_text().splitlines()) == 5


def test_the_judge_reads_yes_and_no_off_the_tiny_gguf_and_branches_by_step_run(exported):
    """P(yes) from one evaluation of the judge prompt (no generation), sharing the agent's conversation
    already in the batch decoder; per-step branching with two candidates runs to its end on a real GGUF."""
    import math

    from fireflan.agent import roles
    from fireflan.agent.judge import yes_probabilities
    from fireflan.agent.loop import AgentConfig
    from fireflan.agent.methods import run_method
    from fireflan.models.llama import LlamaModel
    from fireflan.tasks.base import Example
    from fireflan.tools import Page, Wiki

    model_dir, _ = exported
    model = LlamaModel(model_dir / "gguf" / "model-f16.gguf", threads=1, n_ctx=1024)
    messages = [{"role": "user", "content": "Where was the director of The Glass Harbor born?"}]
    conv = roles.judge_messages(messages, "Thought: a\nAction: search[The Glass Harbor]", "A 1994 film.")
    (p, usage), = yes_probabilities(model, [conv])
    assert 0.0 < p < 1.0 and usage.calls == 1 and usage.completion_tokens == 0
    assert yes_probabilities(model, [conv])[0][0] == p  # the same prompt, the same reading
    tokens = model._tokens(conv)
    (logits, evaluated), = model._batch.next_logits([tokens])
    assert evaluated == 1  # the whole prompt was still in the cache
    yes, no = (model.llm.tokenize(w.encode(), add_bos=False, special=False)[0] for w in ("yes", "no"))
    assert abs(p - 1 / (1 + math.exp(float(logits[no]) - float(logits[yes])))) < 1e-6

    pages = [Page("The Glass Harbor", ("The Glass Harbor is a 1994 film.", "It was directed by Aldo Brenik."))]
    ex = Example(id="q", question=messages[0]["content"], answer="Velmora", task="world")
    traj = run_method("branches", model, Wiki(pages), ex, branch_by="step", candidates=2,
                      config=AgentConfig(max_calls=2, max_tokens=16))
    assert 1 <= len(traj.steps) <= 2 and len(traj.extra["steps"]) == len(traj.steps)
    assert all(p is None or 0.0 <= p <= 1.0 for s in traj.extra["steps"] for p in s["p_yes"])
    assert traj.budget()["calls"] >= 2 * len(traj.steps) and traj.budget()["seconds"] > 0


def test_a_gguf_marked_hermes_is_prompted_with_tools_and_its_calls_read_as_react(exported, tools, tmp_path):
    """The metadata key export writes for a hermes-format model (through the same script) makes LlamaModel
    declare the environment's tools, render the conversation as tool calls and hand tool calls back as ReAct."""
    from fireflan.export.convert import EDIT_METADATA, read_gguf, run_script
    from fireflan.models.llama import LlamaModel

    model, _ = exported
    src, marked = model / "gguf" / "model-q8_0.gguf", tmp_path / "hermes.gguf"
    run_script(tools, str(EDIT_METADATA), [src, marked, json.dumps({"fireflan.action_format": "hermes"})])
    assert read_gguf(marked)["chat_template"] == read_gguf(src)["chat_template"]
    llm = LlamaModel(marked, threads=1)
    assert llm.action_format == "hermes" and LlamaModel(src, threads=1).action_format == "react"
    conversation = [{"role": "user", "content": "Where?"},
                    {"role": "assistant", "content": "Thought: t\nAction: search[X]"},
                    {"role": "user", "content": "Observation: X is in Y."}]
    prompt = llm.prompt(conversation)
    assert "- search(query):" in prompt and '<tool_call>{"name": "search", "arguments": {"query": "X"}}' in prompt
    assert prompt.endswith("<tool_response>\nX is in Y.\n</tool_response><end_of_turn>\n<start_of_turn>model\n")
    llm.use_tools(("execute", "finish"))
    assert "- execute(sql):" in llm.prompt(conversation[:1]) and "search(query)" not in llm.prompt(conversation[:1])
    assert llm._reply('ok\n<tool_call>{"name": "execute", "arguments": {"sql": "SELECT 1"}}') == \
        "Thought: ok\nAction: execute[SELECT 1]"
    assert isinstance(llm.generate(conversation, max_tokens=8), str)  # runs with the tool-call stops


def test_a_truncated_or_foreign_gguf_is_named_with_what_is_wrong(exported, tmp_path):
    from fireflan.io import DataError
    from fireflan.models.llama import LlamaModel, gguf_problem

    model_dir, _ = exported
    whole = model_dir / "gguf" / "model-f16.gguf"
    assert gguf_problem(whole) is None
    data = whole.read_bytes()
    for name, cut, why in (("cut.gguf", data[: len(data) - 1000], "truncated"),
                           ("head.gguf", data[:2000], "is the file truncated?"),
                           ("other.gguf", b"PK\x03\x04 a zip", "GGUF magic")):
        bad = tmp_path / name
        bad.write_bytes(cut)
        with pytest.raises(DataError, match=re.escape(why)) as caught:
            LlamaModel(bad, threads=1, n_ctx=256)
        assert str(caught.value).startswith(f"{bad}: not a loadable GGUF")
