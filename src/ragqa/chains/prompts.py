"""Prompt texts, starting from LangChain's defaults; every one can be overridden from a TOML file
(RAGQA_PROMPTS_FILE) with the same keys."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from ragqa.errors import ConfigError


@dataclass(frozen=True)
class Prompts:
    system: str = ("Use the following pieces of context to answer the question at the end. If you don't know the "
                   "answer, just say that you don't know, don't try to make up an answer.")
    # Appended to `system` by stuff. Its own key so that a caller asking for a bare phrase can drop it: with a
    # short-answer instruction the 1.5B reads it as a second, conflicting format (SQuAD 100: stuff EM 53 -> 59
    # without it, docs/answers.md); the answer's sources are cited structurally either way.
    cite: str = " Cite the sources you use by their number, like [1]."
    # stuff: the context closes the system message and the question alone is the user's turn (LangChain's
    # layout). With the context and then "Question: ... Helpful Answer:" in one user message, the 1.5B answered
    # multi-hop questions with the first hop ("Two Dollar Radio" for "based in where?"): HotpotQA 100 stuff EM
    # 51 -> 56 with the question last and alone (docs/answers.md).
    stuff_context: str = "\n----------------\n{context}"
    stuff: str = "{question}"
    # stuff for a question that asks for one fact (chains/auto.py): the same layout, and the reply is JSON whose
    # `found` is the model's verdict and whose `answer` is checked against the chunks before it is trusted.
    stuff_json: str = ('{question}\nReply with JSON: {{"found": true if the sources contain the answer, '
                       '"answer": the answer}}.')
    map: str = ("Use the following portion of a long document to see if any of the text is relevant to answer the "
                "question. Return any relevant text verbatim. If nothing is relevant, reply with NONE.\n"
                "{context}\nQuestion: {question}\nRelevant text, if any:")
    collapse: str = ("Condense the following extracted parts of a long document, keeping every fact relevant to "
                     "the question and the source numbers like [2].\nQUESTION: {question}\n=========\n{summaries}\n"
                     "=========\nCONDENSED:")
    # map_reduce's last call, in stuff's layout: the summaries close the system message, the question alone is
    # the user's turn (chains/map_reduce.py `combine_messages`). A `combine` holding {summaries} is one user message.
    combine_context: str = ("Given the following extracted parts of a long document and a question, create a final "
                            "answer that cites the source numbers like [2]. If you don't know the answer, just say "
                            "that you don't know. Don't try to make up an answer.\n----------------\n{summaries}")
    combine: str = "{question}"
    # refine: one user message per step, in retrieval order (chains/refine.py). A prompts file may
    # choose LangChain's chat layout instead: a `refine_initial` without {question} becomes the system message
    # (the question, `refine_question`, is the user's turn), and a `refine` without {existing_answer} gets the
    # answer so far as the assistant's own turn. Measured and not the default: it cut CMRC refine from EM 12 to 4
    # (the 1.5B copied whole Chinese passages) and HotpotQA 40 from 45 to 37.5 (docs/answers.md).
    refine_initial: str = ("Context information is below.\n---------------------\n{context}\n---------------------\n"
                           "Given the context information and no prior knowledge, answer the question: {question}\n")
    refine_question: str = "{question}"
    refine: str = ("The original question is as follows: {question}\nWe have provided an existing answer: "
                   "{existing_answer}\nWe have the opportunity to refine the existing answer (only if needed) with "
                   "some more context below.\n------------\n{context}\n------------\nGiven the new context, refine "
                   "the original answer to better answer the question. If the context isn't useful, return the "
                   "original answer.")
    rerank: str = ("Use the following piece of context to answer the question at the end. If you don't know the "
                   "answer, just say that you don't know.\n\nIn addition to giving an answer, also return a score "
                   "of how fully it answered the user's question, between 0 and 100. Reply in this format:\n\n"
                   "Helpful Answer: [answer here]\nScore: [score between 0 and 100]\n\n"
                   "Context:\n{context}\n\nQuestion: {question}\n")
    rerank_json: str = ("Use the following piece of context to answer the question at the end. If the context "
                        "does not contain the answer, set found to false and give a low score.\nReply with JSON: "
                        "{{\"found\": true if the context contains the answer, \"answer\": the shortest phrase "
                        "from the context that answers, \"score\": integer from 0 (not answered) to 100 (fully "
                        "answered)}}.\n\nContext:\n{context}\n\nQuestion: {question}\n")
    rerank_judge: str = ("The sources below give different answers to the question. Read them and choose the "
                         "candidate that answers the question exactly as it is asked.\n\n{context}\n\n"
                         "Question: {question}\nCandidates:\n{candidates}\n")
    # A follow-up question rewritten to stand alone before retrieval (chains/conversation.py): LangChain's
    # CONDENSE_QUESTION_PROMPT, with the history as "Human: ..." / "Assistant: ..." lines as LangChain writes it.
    condense: str = ("Given the following conversation and a follow up question, rephrase the follow up question "
                     "to be a standalone question, in its original language.\n\nChat History:\n{chat_history}\n"
                     "Follow Up Input: {question}\nStandalone question:")
    # A caller's own instruction (a chat's system message, or this key in a prompts file), added to the answering
    # step after ragqa's instructions: it can shape the answer, never replace the rules about the sources.
    instruction: str = ""
    instruction_frame: str = "\n\nThe user's instructions (the rules above still apply): {instruction}"
    summarize_map: str = "Write a concise summary of the following:\n\n\"{text}\"\n\nCONCISE SUMMARY:"
    summarize_combine: str = ("Write a concise summary of the following summaries of consecutive parts of one "
                              "text, in order:\n\n\"{text}\"\n\nCONCISE SUMMARY:")
    summarize_final: str = ("Write a summary of about {words} words of the following summaries of consecutive "
                            "parts of one text, in order:\n\n\"{text}\"\n\nSUMMARY:")
    summarize_refine: str = ("Your job is to produce a final summary.\nWe have provided an existing summary up to a "
                             "certain point: {existing_answer}\nWe have the opportunity to refine the existing "
                             "summary (only if needed) with some more context below.\n------------\n{text}\n"
                             "------------\nGiven the new context, refine the original summary. If the context "
                             "isn't useful, return the original summary.")

    def with_instruction(self, text: str | None) -> Prompts:
        """These prompts with `text` added to the instruction (after one a prompts file set)."""
        text = (text or "").strip()
        if not text:
            return self
        return replace(self, instruction=f"{self.instruction}\n{text}".strip())

    def instructed(self, messages: list[dict]) -> list[dict]:
        """The answering step's messages with the caller's instruction: at the end of the system message (one is
        added when the step has none)."""
        if not self.instruction:
            return messages
        extra = self.instruction_frame.format(instruction=self.instruction)
        if messages and messages[0]["role"] == "system":
            return [{**messages[0], "content": messages[0]["content"] + extra}, *messages[1:]]
        return [{"role": "system", "content": extra.strip()}, *messages]

    @classmethod
    def load(cls, path: Path | None) -> Prompts:
        if path is None:
            return cls()
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read prompts file {path}: {e}") from e
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown prompt names in {path}: {sorted(unknown)}", hint=f"Known: {sorted(known)}.")
        if "system" in data and "cite" not in data:
            # Before `cite` had its own key it was the end of `system`: a file that sets `system` alone means
            # the whole system prompt, as it did then (and does not get the sentence twice).
            data["cite"] = ""
        if "{context}" in data.get("stuff", "") and "stuff_context" not in data:
            # A `stuff` written when it held the context itself (the layout before `stuff_context`): the context
            # goes where that file puts it, once.
            data["stuff_context"] = ""
        return replace(cls(), **data)
