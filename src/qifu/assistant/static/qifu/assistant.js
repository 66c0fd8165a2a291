// The chat panel: posts the question to /api/assistant/ask and shows the answer. No libraries.
(function () {
  const form = document.getElementById("ask-form");
  const input = document.getElementById("question");
  const list = document.getElementById("messages");
  const token = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  function add(role, text, extra) {
    const li = document.createElement("li");
    li.className = "msg " + role;
    const p = document.createElement("p");
    p.textContent = text;
    li.appendChild(p);
    if (extra) {
      const small = document.createElement("small");
      small.textContent = extra;
      li.appendChild(small);
    }
    list.appendChild(li);
    li.scrollIntoView({ block: "end" });
    return li;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    add("user", question);
    input.value = "";
    const waiting = add("bot", "正在查找……");
    try {
      const response = await fetch("/api/assistant/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token },
        body: JSON.stringify({ question: question }),
      });
      const data = await response.json();
      waiting.remove();
      if (!response.ok) {
        add("bot error", data.detail || "出错了，请稍后再试。");
        return;
      }
      add(data.handoff ? "bot handoff" : "bot", data.answer,
          data.handoff ? "已转人工" : "来源：" + data.sources.map(function (s) { return s.title; }).join("、"));
    } catch (err) {
      waiting.remove();
      add("bot error", "网络不通，请稍后再试。");
    }
  });
})();
