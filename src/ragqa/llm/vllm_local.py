"""In-process vLLM for offline batch work on a GPU machine (`pip install -e '.[gpu]'` in the checkout).

Not exercised by the test suite: vLLM needs a CUDA GPU, which CI does not have.
"""

from __future__ import annotations

from collections.abc import Iterator

from ragqa.errors import ConfigError
from ragqa.llm.base import Completion, Message


class VLLMLocal:
    def __init__(self, model: str, *, n_ctx: int = 8192, gpu_memory_utilization: float = 0.9):
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            raise ConfigError("the vllm backend needs vLLM and a GPU", hint="pip install -e '.[gpu]' in the ragqa checkout") from e
        from vllm import LLM

        self.name = model
        self._llm = LLM(model=model, max_model_len=n_ctx, gpu_memory_utilization=gpu_memory_utilization,
                        enable_prefix_caching=True)
        self._tokenizer = self._llm.get_tokenizer()

    @property
    def context_window(self) -> int:
        return self._llm.llm_engine.model_config.max_model_len

    @property
    def supports_json(self) -> bool:
        return True

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def count_messages(self, messages: list[Message]) -> int:
        return len(self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True))

    def _params(self, max_tokens, temperature, stop, json_schema):
        from vllm import SamplingParams

        kw = {}
        if json_schema is not None:
            from vllm.sampling_params import GuidedDecodingParams

            kw["guided_decoding"] = GuidedDecodingParams(json=json_schema)
        return SamplingParams(max_tokens=max_tokens, temperature=temperature, stop=stop, **kw)

    def complete_many(self, batch: list[list[Message]], *, max_tokens: int, temperature: float = 0.0,
                      stop: list[str] | None = None, json_schema: dict | None = None) -> list[Completion]:
        outputs = self._llm.chat(batch, self._params(max_tokens, temperature, stop, json_schema), use_tqdm=False)
        return [Completion(o.outputs[0].text, len(o.prompt_token_ids), len(o.outputs[0].token_ids),
                           o.outputs[0].finish_reason or "stop") for o in outputs]

    def complete(self, messages: list[Message], **kw) -> Completion:
        return self.complete_many([messages], **kw)[0]

    def stream(self, messages: list[Message], **kw) -> Iterator[str]:
        yield self.complete(messages, **kw).text  # offline engine: no token stream
