// The trajectory explorer of report.html. Everything it shows comes from the JSON above it and is put on the page
// as text (textContent), never as markup: the code in it is students' and models' code.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("explorer-data").textContent);
  const $ = (id) => document.getElementById(id);
  const problemSelect = $("explorer-problem"), studentSelect = $("explorer-student");
  const labelSelect = $("explorer-label"), generatorSelect = $("explorer-generator");
  const lanes = $("explorer-streams"), count = $("explorer-count");

  const byProblem = new Map();
  for (const stream of data.streams) {
    if (!byProblem.has(stream.problem)) byProblem.set(stream.problem, []);
    byProblem.get(stream.problem).push(stream);
  }
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const option = (value, text) => { const o = el("option", "", text); o.value = value; return o; };

  for (const problem of byProblem.keys()) problemSelect.appendChild(option(problem, problem));
  data.sets.forEach((name, i) => { if (i > 0) generatorSelect.appendChild(option(String(i), name)); });

  const shownSets = () => generatorSelect.value === "" ? data.sets.map((_, i) => i) : [0, Number(generatorSelect.value)];
  const matchesLabel = (stream) => {
    const label = labelSelect.value;
    if (label === "") return true;
    return shownSets().some((s) => (stream.by_set[s] || []).some((a) => a.label === label));
  };

  function fillStudents() {
    const keep = studentSelect.value;
    const streams = (byProblem.get(problemSelect.value) || []).filter(matchesLabel);
    studentSelect.replaceChildren(...streams.map((s) => option(s.student, s.student)));
    if (streams.some((s) => s.student === keep)) studentSelect.value = keep;
    count.textContent = streams.length + " of " + (byProblem.get(problemSelect.value) || []).length + " students";
    show();
  }

  function diffBlock(diff) {
    const pre = el("pre", "diff");
    for (const line of diff.split("\n")) {
      const kind = line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : "";
      pre.appendChild(el("span", kind, line + "\n"));
    }
    return pre;
  }

  function attemptCard(a) {
    const card = el("div", "attempt " + a.label);
    card.appendChild(el("div", "head", "attempt " + a.attempt + " · " + a.label + " · pass rate " + a.pass_rate.toFixed(2)));
    if (a.message) card.appendChild(el("pre", "", a.message));
    for (const f of a.failing || []) {
      card.appendChild(el("pre", "", ">>> " + f.source.trimEnd() + "\nexpected: " + f.want.trimEnd() + "\ngot:      " + f.got.trimEnd()));
    }
    if (a.hint) card.appendChild(el("div", "hint", "tutor: " + a.hint));
    if (a.diff !== undefined) {
      card.appendChild(a.diff === "" ? el("div", "empty", "same code as the attempt before") : diffBlock(a.diff));
    }
    const code = el("details");
    code.appendChild(el("summary", "", a.diff === undefined ? "code" : "whole code"));
    code.appendChild(el("pre", "", a.code));
    if (a.diff === undefined) code.open = true;
    card.appendChild(code);
    return card;
  }

  function show() {
    const stream = (byProblem.get(problemSelect.value) || []).find((s) => s.student === studentSelect.value);
    lanes.replaceChildren();
    lanes.dataset.stream = stream ? stream.problem + "/" + stream.student : "";
    if (!stream) { lanes.appendChild(el("p", "empty", "no stream matches the filters")); return; }
    for (const s of shownSets()) {
      const lane = el("section", "lane");
      lane.dataset.set = data.sets[s];
      const attempts = stream.by_set[s] || [];
      lane.appendChild(el("h3", "", data.sets[s] + " (" + attempts.length + " attempts)"));
      if (attempts.length === 0) lane.appendChild(el("p", "empty", "no stream for this student and problem"));
      for (const a of attempts) lane.appendChild(attemptCard(a));
      lanes.appendChild(lane);
    }
  }

  problemSelect.addEventListener("change", fillStudents);
  labelSelect.addEventListener("change", fillStudents);
  generatorSelect.addEventListener("change", fillStudents);
  studentSelect.addEventListener("change", show);
  fillStudents();
})();
