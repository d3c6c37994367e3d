"""The leak checker: the corpus of leaking and valid scripts, label and type rules, the CLI."""

import dataclasses
import pathlib
import re

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from enigma.app.cli import main
from enigma.lang.checker import check, check_file
from enigma.lang.errors import ScriptError
from enigma.lang.schema import Schema
from enigma.lang.syntax import (
    PRIVATE,
    PUBLIC,
    ROWS,
    Assign,
    DictType,
    Expr,
    For,
    FuncCall,
    If,
    ListType,
    Select,
    TupleType,
    ValueType,
    Where,
    label_of,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORPUS = pathlib.Path(__file__).resolve().parent / "lang_corpus"
SCHEMAS = {name: Schema.load(ROOT / "examples" / f"{name}.yaml") for name in ("benefits",
                                                                              "acs12")}
BENEFITS = SCHEMAS["benefits"]
LEAKS = sorted((CORPUS / "leaks").glob("*.py"))
VALID = sorted((CORPUS / "valid").glob("*.py"))


def _schema_for(text: str) -> Schema:
    m = re.search(r"^# schema: (\w+)", text, re.M)
    return SCHEMAS[m.group(1) if m else "benefits"]


def _nodes(node):
    """Every typed-AST node reachable from `node` (dataclass fields, tuples)."""
    if isinstance(node, tuple | list):
        for item in node:
            yield from _nodes(item)
        return
    if not dataclasses.is_dataclass(node) or isinstance(node, type):
        return
    yield node
    for f in dataclasses.fields(node):
        if f.name != "type":
            yield from _nodes(getattr(node, f.name))


def _last_value_type(source: str, schema: Schema = BENEFITS):
    script = check(source, schema)
    last = script.body[-1]
    assert isinstance(last, Assign)
    return last.value.type


def test_corpus_is_large_enough() -> None:
    assert len(LEAKS) >= 25 and len(VALID) >= 25


@pytest.mark.parametrize("path", LEAKS, ids=[p.stem for p in LEAKS])
def test_leaking_script_is_refused_with_message_and_position(path: pathlib.Path) -> None:
    text = path.read_text()
    expect = re.search(r"^# expect: (.+)$", text, re.M).group(1)
    line, col = map(int, re.search(r"^# at: (\d+):(\d+)$", text, re.M).groups())
    with pytest.raises(ScriptError) as info:
        check_file(path, _schema_for(text))
    err = info.value
    assert expect in err.message
    assert (err.line, err.col) == (line, col)
    assert str(err).startswith(f"{path}:{line}:{col}: ")


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_script_passes_with_a_fully_typed_ast(path: pathlib.Path) -> None:
    text = path.read_text()
    script = check_file(path, _schema_for(text))
    assert script.outputs, "every corpus script reveals something"
    names = [o.name for o in script.outputs]
    assert len(set(names)) == len(names)
    everything = list(_nodes(script.body)) + list(_nodes(script.functions))
    exprs = [n for n in everything if isinstance(n, Expr)]
    assert exprs
    for node in exprs:
        assert isinstance(node.type, ValueType | ListType | TupleType | DictType), node
        assert node.line >= 1 and node.col >= 1


def test_refusals_explain_in_plain_language() -> None:
    with pytest.raises(ScriptError) as info:
        check("avg = mean(data.age)\nprint(avg)\n", BENEFITS, "s.py")
    assert info.value.located() == "s.py:2:7: print() of a private value"
    assert "reveal(x)" in info.value.explanation


def test_columns_carry_schema_kind_label_shape_and_range() -> None:
    t = _last_value_type("x = data.age\n")
    assert t == ValueType(PRIVATE, t.kind, (ROWS,), 20, 70)
    assert str(t.kind) == "int"
    rr = _last_value_type("x = data['rr']\n")
    assert str(rr.kind) == "fixed16" and (rr.lo, rr.hi) == (0.0, 0.7)
    sex = _last_value_type("x = data.sex\n")
    assert sex.kind.levels == ("female", "male")


def test_ranges_follow_arithmetic() -> None:
    t = _last_value_type("x = data.age * 2 - data.tenure\n")
    assert (t.lo, t.hi) == (40 - 50, 140 - 0)
    s = _last_value_type("x = sum(data.age)\n")
    assert (s.lo, s.hi) == (0, 70 * BENEFITS.rows) and s.scalar
    m = _last_value_type("x = mean(data.age)\n")
    assert (m.lo, m.hi) == (20, 70) and m.kind.name == "fixed"
    c = _last_value_type("x = corr(data.age, data.rr)\n")
    assert (c.lo, c.hi) == (-1, 1)


def test_public_schema_column_may_bound_a_loop() -> None:
    doc = BENEFITS.to_dict()
    for col in doc["columns"]:
        if col["name"] == "yrdispl":
            col["label"] = "public"
    schema = Schema.from_dict(doc)
    script = check("k = max(data.yrdispl)\nfor i in range(k):\n    pass\n", schema)
    assert isinstance(script.body[1], For)
    with pytest.raises(ScriptError, match="range\\(\\) bound is private"):
        check("k = max(data.age)\nfor i in range(k):\n    pass\n", schema)


def test_private_if_becomes_select_and_public_if_stays() -> None:
    script = check_file(CORPUS / "valid" / "oblivious_if.py", BENEFITS)
    selects = [n for n in _nodes(script.body) if isinstance(n, Select)]
    assert selects
    outputs = dict(selects[0].outputs)
    assert label_of(outputs["bonus"]) is PRIVATE
    column_select = next(s for s in selects if "band" in dict(s.outputs))
    assert dict(column_select.outputs)["band"].shape == (ROWS,)
    public = check_file(CORPUS / "valid" / "public_if.py", BENEFITS)
    assert any(isinstance(n, If) for n in public.body)
    assert not any(isinstance(n, Select) for n in _nodes(public.body))


def test_private_conditional_expression_is_a_where() -> None:
    script = check("x = 1 if mean(data.age) > 3 else 2\n", BENEFITS)
    assert isinstance(script.body[0].value, Where)
    assert label_of(script.body[0].value.type) is PRIVATE


def test_functions_are_specialised_per_argument_types() -> None:
    src = "def f(x):\n    return x + 1\n\na = f(1)\nb = f(data.age)\nc = f(1)\n"
    script = check(src, BENEFITS)
    assert len(script.functions) == 2
    a, b, c = (s.value for s in script.body)
    assert isinstance(a, FuncCall) and a.func is c.func and a.func is not b.func
    assert label_of(a.type) is PUBLIC and label_of(b.type) is PRIVATE


def test_only_specialisations_the_program_calls_are_kept() -> None:
    src = "def f(x):\n    return x + 1\n\nacc = 0\nfor i in range(3):\n    acc = f(acc)\n"
    script = check(src, BENEFITS)
    calls = [n for n in _nodes(script.body) if isinstance(n, FuncCall)]
    assert [fn.params[0].type for fn in script.functions] == [calls[0].func.params[0].type]
    assert calls[0].func.params[0].type.lo is None  # the loop's widened type, not pass one's


def test_loop_types_reach_a_fixed_point() -> None:
    src = "acc = 0\nfor i in range(3):\n    acc = acc + mean(data.age)\ny = acc\n"
    t = _last_value_type(src)
    assert t.label is PRIVATE and t.kind.name == "fixed" and t.lo is None


def test_unannotated_names_follow_their_latest_value() -> None:
    t = _last_value_type("x = mean(data.age)\nx = 3\ny = x\n")
    assert t.label is PUBLIC
    t = _last_value_type("x: private = 3\nx = 4\ny = x\n")
    assert t.label is PRIVATE


def test_variable_used_before_any_value_on_some_path() -> None:
    with pytest.raises(ScriptError, match="'y' may have no value here"):
        check("for i in range(3):\n    if i > 1:\n        y = 1\n    z = y\n", BENEFITS)


def test_powers_fold_as_the_run_computes_them() -> None:
    """Python's unbounded integers are not the run's 64-bit ones (found by
    tests/test_lang_noninterference.py; the leaks corpus has the scripts that leaked)."""
    assert _last_value_type("x = 2 ** -1\n").kind.name == "fixed"
    assert _last_value_type("x = 0 ** -1\n").lo is None  # no ZeroDivisionError in the checker
    assert _last_value_type("x = 2 ** 62 + (2 ** 62 - 1)\n").hi == 2**63 - 1
    assert _last_value_type("x = data.tenure ** 40\n").hi is None  # past 64 bits: no range
    for big in ("3 ** 9000000000000", "-(-(2 ** 62) * 2)", "2 ** 62 * 2"):
        with pytest.raises(ScriptError, match="does not fit in 64 bits"):
            check(f"x = {big}\n", BENEFITS)


def test_a_loop_with_break_may_leave_names_unassigned() -> None:
    with pytest.raises(ScriptError, match="'y' may have no value here"):
        check("for i in range(3):\n    if i == 1:\n        break\n    y = 1\nz = y\n", BENEFITS)


def test_constant_public_conditions_fold_but_dead_branches_are_checked() -> None:
    src = ("n = 4000 // 400\nif n > 3:\n    k = n\nelse:\n    k = 5\n"
           "h = histogram(data.age, bins=k)\n")
    assert _last_value_type(src).shape == (10,)
    with pytest.raises(ScriptError, match="the number of bins must be a constant"):
        check("if len(data) > 3:\n    k = 10\nelse:\n    k = 5\n"
              "h = histogram(data.age, bins=k)\n", BENEFITS)  # the row count is not folded
    with pytest.raises(ScriptError, match="print\\(\\) of a private value"):
        check("if len(data) < 0:\n    print(mean(data.age))\n", BENEFITS)


def test_typed_ast_records_the_revealed_outputs() -> None:
    script = check_file(CORPUS / "valid" / "ui_by_state.py", BENEFITS)
    outputs = {o.name: o.type for o in script.outputs}
    share = outputs["ui share by state"]
    assert share.shape == (51,) and share.kind.name == "fixed" and (share.lo, share.hi) == (0, 1)


_PRIVATE_LEAVES = ["data.age", "mean(data.rr)", "sum(data.ui)", "data.tenure"]
_PUBLIC_LEAVES = ["3", "len(data)", "2.5", "data.rows"]
_OPS = ["+", "-", "*"]


@st.composite
def _expression(draw, depth: int = 3) -> tuple[str, bool]:
    """A random arithmetic expression and whether it reads a private value."""
    if depth == 0 or draw(st.booleans()):
        private = draw(st.booleans())
        leaf = draw(st.sampled_from(_PRIVATE_LEAVES if private else _PUBLIC_LEAVES))
        return leaf, private
    a, pa = draw(_expression(depth - 1))
    b, pb = draw(_expression(depth - 1))
    return f"({a} {draw(st.sampled_from(_OPS))} {b})", pa or pb


@settings(max_examples=150, deadline=None)
@given(_expression())
def test_label_is_the_join_of_the_inputs(expr: tuple[str, bool]) -> None:
    source, private = expr
    t = _last_value_type(f"x = {source}\n")
    assert (label_of(t) is PRIVATE) == private


@settings(max_examples=100, deadline=None)
@given(_expression(), st.sampled_from(["print({x})", "for i in range({x}):\n    pass",
                                       "while {x} > 0:\n    pass", "assert {x} > 0",
                                       "y = [1, 2][{x}]", "k: public = {x}"]))
def test_a_private_value_never_reaches_a_public_sink(expr: tuple[str, bool], sink: str) -> None:
    source, private = expr
    script = f"x = {source}\nz = x\n" + sink.format(x="z") + "\n"
    if private:
        with pytest.raises(ScriptError):
            check(script, BENEFITS)
    else:
        try:
            check(script, BENEFITS)
        except ScriptError as exc:  # public values may still be of the wrong kind or shape
            assert "private" not in exc.message, exc


def test_cli_check_accepts_and_refuses(tmp_path) -> None:
    runner = CliRunner()
    schema = str(ROOT / "examples" / "benefits.yaml")
    ok = runner.invoke(main, ["check", str(CORPUS / "valid" / "average_age.py"), "--schema",
                              schema, "--no-run"])
    assert ok.exit_code == 0 and "reveal 'average age': private fixed16 scalar" in ok.output
    leak = CORPUS / "leaks" / "print_private.py"
    bad = runner.invoke(main, ["check", str(leak), "--schema", schema])
    assert bad.exit_code == 1
    assert f"{leak}:4:19: print() of a private value" in bad.output
    tree = runner.invoke(main, ["check", str(CORPUS / "valid" / "oblivious_if.py"), "--schema",
                                schema, "--ast", "--no-run"])
    assert tree.exit_code == 0
    assert "Select() @" in tree.output and "output band : private int column" in tree.output


def test_cli_check_finds_the_declared_schema_dry_runs_and_estimates() -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["check", str(ROOT / "examples" / "average_age.py")])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any("dry run on SYNTHETIC data" in line for line in lines)
    dry = [line for line in lines if line.strip().startswith("mean_age = ")]
    assert dry and float(dry[0].split("=")[1].split()[0]) >= 0
    cost = [line for line in lines if ": cost estimated at 2,000 rows" in line]
    assert cost and "triples" in cost[0] and "rounds" in cost[0]


def test_cli_check_without_a_schema_says_how_to_give_one(tmp_path) -> None:
    script = tmp_path / "s.py"
    script.write_text("reveal(mean(data.age), 'm')\n")
    out = CliRunner().invoke(main, ["check", str(script)])
    assert out.exit_code != 0
    assert "no schema: give --schema FILE or write a line '# schema: FILE'" in out.output


_SCALAR_LEAVES = ["mean(data.age)", "sum(data.ui)", "count(data.tenure > 10)", "max(data.tenure)",
                  "len(data)", "3", "7", "2"]


@st.composite
def _program(draw) -> str:
    """A random straight-line-and-branches program over scalars, ending in prints."""
    names: list[str] = []
    lines: list[str] = []

    def operand() -> str:
        pool = names + _SCALAR_LEAVES
        return draw(st.sampled_from(pool))

    for i in range(draw(st.integers(3, 8))):
        v = f"v{i}"
        shape = draw(st.sampled_from(["assign", "if", "for", "print"]))
        if shape == "assign" or not names:
            lines.append(f"{v} = {operand()} {draw(st.sampled_from(_OPS))} {operand()}")
        elif shape == "if":
            lines += [f"if {operand()} > {operand()}:", f"    {v} = {operand()}", "else:",
                      f"    {v} = {operand()} + 1"]
        elif shape == "for":
            bound = draw(st.sampled_from([*names, "3"]))
            lines += [f"{v} = 0", f"for i in range(min({bound}, 4)):", f"    {v} = {v} + i * 2"]
        else:
            lines.append(f"print({draw(st.sampled_from(names))})")
            continue
        names.append(v)
    lines += [f"print({n})" for n in draw(st.lists(st.sampled_from(names), max_size=3))]
    return "\n".join(lines) + "\n"


@settings(max_examples=80, deadline=None)
@given(_program())
def test_accepted_programs_show_nothing_that_depends_on_private_data(source: str) -> None:
    """Non-interference, run for real: two tables that differ only in private values give
    the same prints and the same control flow, for every program the checker accepts."""
    from enigma.lang.interpreter import run
    from enigma.lang.plain import PlainBackend, synthetic_table

    try:
        script = check(source, BENEFITS)
    except ScriptError:
        return
    names = ["age", "ui", "tenure"]
    transcripts = []
    for seed in (0, 1):
        table = synthetic_table(BENEFITS, 40, names, seed=seed)
        transcripts.append(run(script, PlainBackend(BENEFITS, table, 40)).printed)
    assert transcripts[0] == transcripts[1], source


def _with_public(schema: Schema, names: tuple[str, ...]) -> Schema:
    doc = schema.to_dict()
    for col in doc["columns"]:
        if col["name"] in names:
            col["label"] = "public"
    return Schema.from_dict(doc)


MIXED = _with_public(BENEFITS, ("yrdispl", "tenure"))
_COLUMN_LEAVES = ["data.age", "data.yrdispl", "data.tenure", "data.rr", "2", "len(data)"]


@st.composite
def _column_program(draw) -> str:
    """Random column programs over public and private columns: selects, where(), reductions."""
    names: list[str] = []
    lines: list[str] = []

    def operand() -> str:
        return draw(st.sampled_from(names + _COLUMN_LEAVES))

    for i in range(draw(st.integers(2, 6))):
        v = f"c{i}"
        shape = draw(st.sampled_from(["assign", "if", "where", "reduce"]))
        if shape == "if":
            lines += [f"{v} = {operand()}", f"if {operand()} > {operand()}:",
                      f"    {v} = {operand()} * 2"]
        elif shape == "where":
            lines.append(f"{v} = where({operand()} < {operand()}, {operand()}, {operand()})")
        elif shape == "reduce":
            lines.append(f"{v} = {draw(st.sampled_from(['sum', 'max', 'count']))}"
                         f"({operand()} > {operand()}) + {operand()}")
        else:
            lines.append(f"{v} = {operand()} {draw(st.sampled_from(_OPS))} {operand()}")
        names.append(v)
    lines += [f"print(sum({n}))" for n in names]
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None)
@given(_column_program())
def test_column_programs_show_nothing_that_depends_on_private_columns(source: str) -> None:
    """Non-interference with public columns in the table: the two runs share the public
    columns (yrdispl, tenure) and differ in the private ones (age, rr)."""
    from enigma.lang.interpreter import run
    from enigma.lang.plain import PlainBackend, synthetic_table

    lines = source.splitlines()
    accepted = []
    for line in range(len(lines), 0, -1):  # drop refused trailing prints until one is accepted
        text = "\n".join(lines[:line]) + "\n"
        try:
            accepted = [check(text, MIXED)]
            break
        except ScriptError:
            continue
    if not accepted or "print(" not in text:
        return
    names = ["age", "yrdispl", "tenure", "rr"]
    public = synthetic_table(MIXED, 30, ["yrdispl", "tenure"], seed=5)
    printed = []
    for seed in (0, 1):
        table = {**synthetic_table(MIXED, 30, names, seed=seed), **public}
        printed.append(run(accepted[0], PlainBackend(MIXED, table, 30)).printed)
    assert printed[0] == printed[1], text
