"""The official `openai` SDK, as a real client, gets cited answers from /v1/chat/completions."""

from __future__ import annotations

import openai
import pytest

QUESTION = [{"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Who are the crazy ones?"}]


@pytest.fixture(scope="module")
def client(server):
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300) as c:
        yield c


def test_collections_are_models(client):
    assert "crazy" in [m.id for m in client.models.list()]


def test_chat_completion_is_cited(client):
    r = client.chat.completions.create(model="crazy", messages=QUESTION, extra_body={"k": 1})
    assert r.object == "chat.completion" and r.model == "crazy"
    text = r.choices[0].message.content
    last = r.model_extra["ragqa"]["trace"]["steps"][-1]  # "length" exactly when the answering step was cut
    assert r.choices[0].finish_reason == ("length" if last["cut"] else "stop") and r.choices[0].message.role == "assistant"
    assert "\n\nSources:\n[1] crazyones.pdf, p. 1" in text  # the citation a chat UI shows
    sources = r.model_extra["sources"]  # ... and the one a program reads
    assert [(s["document"], s["page"]) for s in sources] == [("crazyones.pdf", 1)]
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0


def test_streamed_chat_completion_is_cited(client):
    stream = client.chat.completions.create(model="crazy", messages=QUESTION, stream=True, extra_body={"k": 1},
                                            stream_options={"include_usage": True})
    parts, sources, finish, usage = [], None, None, None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage:
            usage = chunk.usage
        if not chunk.choices:
            continue
        if chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if (chunk.model_extra or {}).get("sources"):
            sources = chunk.model_extra["sources"]
        finish = chunk.choices[0].finish_reason or finish
        if (chunk.model_extra or {}).get("ragqa"):
            last = chunk.model_extra["ragqa"]["trace"]["steps"][-1]
    text = "".join(parts)
    assert len(parts) > 2 and text.split("\n\nSources:\n")[0].strip()
    assert text.endswith("\n\nSources:\n[1] crazyones.pdf, p. 1")
    assert [(s["document"], s["page"]) for s in sources] == [("crazyones.pdf", 1)]
    assert finish == ("length" if last["cut"] else "stop") and usage.completion_tokens > 0


def test_unknown_collection_is_an_sdk_not_found_error(client):
    with pytest.raises(openai.NotFoundError, match="No collection 'nope'"):
        client.chat.completions.create(model="nope", messages=QUESTION)
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="crazy", messages=[{"role": "system", "content": "no question"}])


def test_max_tokens_caps_every_generation(client):
    r = client.chat.completions.create(model="crazy", messages=QUESTION, max_tokens=3,
                                       extra_body={"k": 1, "chain": "stuff"})
    steps = r.model_extra["ragqa"]["trace"]["steps"]
    assert steps and all(s["completion_tokens"] <= 3 * max(1, s["calls"]) for s in steps)
    assert 0 < r.usage.completion_tokens <= 3
    assert r.choices[0].finish_reason == "length" and steps[-1]["cut"] == 1  # the answer stopped mid-way, and says so


def test_tool_and_assistant_turns_are_accepted_and_the_last_user_message_is_answered(client, server):
    """An agent's conversation (a tool call and its result after the question) is a valid request: the schema's
    `contains` says what the server needs, at least one user message with text, and nothing more."""
    messages = [*QUESTION,
                {"role": "assistant", "content": None,
                 "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "lookup found nothing"}]
    r = client.chat.completions.create(model="crazy", messages=messages, extra_body={"k": 1, "chain": "stuff"})
    assert [(s["document"], s["page"]) for s in r.model_extra["sources"]] == [("crazyones.pdf", 1)]
    schema = server.client.get("/openapi.json").json()["components"]["schemas"]["ChatRequest"]
    needs = schema["properties"]["messages"]["contains"]
    assert needs["properties"]["role"] == {"const": "user"} and needs["required"] == ["role", "content"]
    with pytest.raises(openai.UnprocessableEntityError):  # outside the schema: no user text
        client.chat.completions.create(model="crazy", messages=[{"role": "user", "content": "  "},
                                                                  {"role": "tool", "content": "x"}])


# -- a conversation ---------------------------------------------------------------------------------------------
PUBLISHERS = "qa/hotpotqa_train_sample100_first8_and_2_bridges.json"
TURNS = ["What is Two Dollar Radio?", "Where is it based?", "When was it founded?"]


@pytest.fixture(scope="module")
def publishers(server):
    """The ten paragraphs of a HotpotQA question about publishing houses, one .txt document each: several say
    when they were founded, so "When was it founded?" alone does not say which."""
    import json

    from conftest import fixture

    data = json.loads(fixture(PUBLISHERS).read_text(encoding="utf-8"))
    question = next(q for q in data if any(title == "Two Dollar Radio" for title, _ in q["context"]))
    files = [(f"{title}.txt", f"{title}\n{''.join(sentences)}".encode()) for title, sentences in question["context"]]
    r = server.upload("publishers", files)
    assert r.status_code == 202, r.text
    assert server.wait_job(r.json()["job_id"])["state"] == "succeeded"
    founded = [name for name, text in files if b"founded in" in text]
    assert len(founded) >= 3, founded  # the third question is ambiguous on its own words
    return "publishers"


def _converse(client, collection: str, *, stream: bool) -> list[dict]:
    """The three turns through the SDK, each answer appended to the conversation as a chat UI does; per turn
    the answer's text, sources and ragqa's extra fields."""
    messages, out = [{"role": "system", "content": "Answer in one sentence."}], []
    for question in TURNS:
        messages.append({"role": "user", "content": question})
        extra = {"k": 2, "chain": "stuff"}
        if stream:
            text, sources, ragqa = "", None, None
            for chunk in client.chat.completions.create(model=collection, messages=messages, stream=True,
                                                        extra_body=extra):
                if chunk.choices and chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
                sources = (chunk.model_extra or {}).get("sources") or sources
                ragqa = (chunk.model_extra or {}).get("ragqa") or ragqa
        else:
            r = client.chat.completions.create(model=collection, messages=messages, extra_body=extra)
            text, sources, ragqa = r.choices[0].message.content, r.model_extra["sources"], r.model_extra["ragqa"]
        out.append({"text": text, "sources": sources, "ragqa": ragqa})
        messages.append({"role": "assistant", "content": text})
    return out


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_three_turn_conversation_answers_the_follow_up_from_the_right_document(client, publishers, stream):
    first, second, third = _converse(client, publishers, stream=stream)
    assert "conversation" not in first["ragqa"]  # nothing came before it: searched as asked
    for turn in (second, third):
        conv = turn["ragqa"]["conversation"]
        assert conv["rewritten"] in ("llm", "fallback") and conv["reason"] == "points back (it)"
        assert "Two Dollar Radio" in conv["searched"]  # what was searched names the subject of the conversation
        assert turn["ragqa"]["trace"]["steps"][0]["name"] == "rewrite"  # one short call, before retrieval
    assert third["ragqa"]["conversation"]["history_turns"] == 4
    assert "Two Dollar Radio.txt" in [s["document"] for s in third["sources"]]
    assert third["sources"][0]["document"] == "Two Dollar Radio.txt"
    assert "Two Dollar Radio.txt" in third["text"].split("\n\nSources:\n")[1]  # what a chat UI shows


def test_query_takes_the_history_and_an_instruction(server, publishers):
    r = server.client.post("/v1/query", json={
        "question": "When was it founded?", "collection": publishers, "k": 2, "chain": "stuff",
        "history": [{"role": "user", "content": "What is Two Dollar Radio?"},
                    {"role": "assistant", "content": "An independent publishing house."}],
        "instruction": "Answer in one sentence."})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "Two Dollar Radio" in body["conversation"]["searched"]
    assert body["sources"][0]["document"] == "Two Dollar Radio.txt"
    bad = server.client.post("/v1/query", json={"question": "When?", "collection": publishers,
                                                 "history": [{"role": "robot", "content": "x"}]})
    assert bad.status_code == 422 and "history" in bad.text
