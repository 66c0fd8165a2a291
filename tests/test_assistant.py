"""The annual-report assistant: accuracy on the question set, hand-off, facts and interfaces."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from bench.assistant_eval import evaluate

from qifu.engine.assistant.retrieval import HANDOFF_ANSWER, default

QUESTIONS = yaml.safe_load((Path(__file__).resolve().parent.parent / "bench" / "assistant_questions.yaml").read_text("utf-8"))
LINK = re.compile(r"https?://|www\.|\.(com|cn|net|gov)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def assistant():
    return default()


def test_question_set_is_large_enough():
    assert sum(len(v) for v in QUESTIONS["in_scope"].values()) >= 200
    assert len(QUESTIONS["out_of_scope"]) >= 30


def test_accuracy_and_handoff_on_the_question_set(assistant):
    result = evaluate(assistant, QUESTIONS)
    assert result["top1"] >= 0.92, result["misses"]
    assert result["oos_handoff"] >= 0.95, result["answered_out_of_scope"]


def test_knowledge_base_entries_have_a_legal_basis_and_no_links(assistant):
    assert len(assistant.entries) >= 40
    assert len({e.id for e in assistant.entries}) == len(assistant.entries)
    for entry in assistant.entries:
        assert entry.basis and any(w in entry.basis for w in ("《", "提醒", "填报说明")), entry.id
        assert not LINK.search(entry.answer), entry.id
        assert not re.search(r"[\u4e00-\u9fff] [\u4e00-\u9fff]", entry.answer), f"stray space in {entry.id}"


@pytest.mark.parametrize(
    ("question", "entry"),
    [
        ("年报最晚什么时候报", "filing_window"),
        ("营业额80万元年报里填多少", "unit_wanyuan"),
        ("短信让我点链接补报年报是真的吗", "scam_sms"),
        ("被列入经营异常名录了怎么办", "abnormal_list_removal"),
        ("我们明明按时报了年报，怎么还被列入经营异常名录", "abnormal_list_objection"),
        ("个体户年报在哪报", "individual_business"),
        ("补贴可以放弃吗", "policy_decline"),
        ("年报能放弃吗", "who_must_file"),  # a policy may be declined, the annual report may not
        ("对检测报告结论有异议能复检吗", "labs_send_in"),
        ("移出经营异常名录后怎么打印决定书", "abnormal_list_removal"),
        ("公司搬走了没改地址，被列入经营异常名录了", "abnormal_list_unreachable"),
    ],
)
def test_typical_questions(assistant, question, entry):
    answer = assistant.ask(question)
    assert (answer.entry_id, answer.handoff) == (entry, False)
    assert "依据：" in answer.answer and answer.sources[0]["id"] == entry


@pytest.mark.parametrize("question", ["", "？？？", "今天天气怎么样", "怎么申请专利"])
def test_out_of_scope_or_empty_is_handed_off(assistant, question):
    answer = assistant.ask(question)
    assert answer.handoff is True
    assert answer.answer == HANDOFF_ANSWER


def test_the_same_question_gets_the_same_answer(assistant):
    assert assistant.ask("年报收费吗").as_json() == assistant.ask("年报收费吗").as_json()


@pytest.mark.django_db
def test_api_answers_and_queues_handoffs(client):
    from qifu.assistant.models import Handoff

    response = client.post("/api/assistant/ask", json.dumps({"question": "年报要交钱吗"}), content_type="application/json")
    data = response.json()
    assert response.status_code == 200
    assert set(data) >= {"answer", "score", "sources", "handoff"}
    assert (data["handoff"], data["entry_id"], data["handoff_id"]) == (False, "free_of_charge", None)
    response = client.post("/api/assistant/ask", json.dumps({"question": "商标被抢注了怎么办"}), content_type="application/json")
    data = response.json()
    assert data["handoff"] is True
    item = Handoff.objects.get(pk=data["handoff_id"])
    assert (item.question, item.topic, item.status) == ("商标被抢注了怎么办", "知识产权", "waiting")


@pytest.mark.django_db
def test_api_rejects_bad_requests(client):
    assert client.get("/api/assistant/ask").status_code == 405
    bad = client.post("/api/assistant/ask", "not json", content_type="application/json")
    assert bad.status_code == 400
    missing = client.post("/api/assistant/ask", json.dumps({"q": "年报"}), content_type="application/json")
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"][-1] == "question"
    empty = client.post("/api/assistant/ask", json.dumps({"question": " "}), content_type="application/json")
    assert empty.status_code == 400


@pytest.mark.django_db
def test_api_requires_csrf_from_a_browser():
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/api/assistant/ask", json.dumps({"question": "年报"}), content_type="application/json")
    assert response.status_code == 403


@pytest.mark.django_db
def test_chat_page_ships_its_own_assets(client):
    html = client.get("/assistant/").content.decode()
    assert "年报助手" in html and "/static/qifu/assistant.js" in html
    assert not re.search(r'(src|href)="https?://', html)
