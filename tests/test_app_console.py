"""The owner's console in a real browser: headless Debian chromium through selenium drives
upload, check, estimate, run, the labelled result with its chart and its chain record, the
network page, and the errors (a bad CSV row, a leaking script, a chain that is down).

The network is a real local one (`LocalNetwork`, as `enigma up` starts it: a chain process,
3 node processes, the DHT); the console serves it on a free 127.0.0.1 port from a thread of
this process. Jobs preprocess with the INSECURE test dealer (the console says so on every
page) to keep the file's time bounded; the HE path is the CLI's and the API's, tested in
test_app_e2e.py. Each page is captured as a PNG; with ENIGMA_CONSOLE_SHOTS=docs/console the
captures replace the screenshots the README links to (a plain test run leaves the checkout
as it was). The safety rules (login off loopback, CSRF) are checked without a browser too.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest

from enigma.app.api import submit
from enigma.app.console import safety
from enigma.app.console.command import login_token, start
from enigma.app.console.datasets import check_table
from enigma.app.console.server import Console, create_app
from enigma.app.context import Context
from enigma.app.network import LocalNetwork
from enigma.lang.schema import Schema

ROOT = Path(__file__).resolve().parents[1]
SHOTS = os.environ.get("ENIGMA_CONSOLE_SHOTS")
ROWS = 60
COLUMNS = ("age", "joblost", "rr", "ui")
SCRIPT = ("workers = group_by(data.joblost)\n"
          "reveal(workers, 'workers')\n"
          "reveal(mean(data.age), 'mean_age')\n")
LEAK = ("total = sum(data.age)\n"
        "if total > 1000:\n"
        "    print('many')\n"
        "reveal(total, 'total')\n")
WAIT = 240.0

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
NO_BROWSER = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them: "
           "apt-get install chromium chromium-driver)")


def browser_missing(test):
    """A browser test: skipped, saying why, without chromium; slow (a network of 3 nodes)."""
    return pytest.mark.slow(NO_BROWSER(test))


def _table(folder: Path) -> tuple[Path, Path]:
    """The first ROWS rows of data/benefits.csv, four columns, and their schema."""
    whole = pacsv.read_csv(ROOT / "data" / "benefits.csv",
                           convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
    pacsv.write_csv(whole.select(list(COLUMNS)).slice(0, ROWS), folder / "people.csv")
    body = Schema.load(ROOT / "examples" / "benefits.yaml").to_dict()
    body.update(name="people", rows=ROWS,
                columns=[c for c in body["columns"] if c["name"] in COLUMNS])
    (folder / "people.yaml").write_text(Schema.from_dict(body).dumps())
    return folder / "people.csv", folder / "people.yaml"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("console-files")
    data, schema = _table(folder)
    lines = data.read_text().splitlines()
    bad = lines[:]
    cells = bad[7].split(",")
    cells[0] = "forty"  # row 7 (header excluded: line 8), column age
    bad[7] = ",".join(cells)
    (folder / "bad.csv").write_text("\n".join(bad) + "\n")
    return {"data": data, "schema": schema, "bad": folder / "bad.csv"}


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """A local network of 3 nodes and a console for its context: (url, Console)."""
    home = tmp_path_factory.mktemp("console-net")
    net = LocalNetwork.start(home, 3)
    try:
        server, url, con = start(Context.load(home / "context.json"), insecure_dealer=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield url, con
        finally:
            server.shutdown()
            server.server_close()
            con.close()
    finally:
        net.stop()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _find(driver, css: str, timeout: float = 10.0):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def _shot(driver, name: str) -> None:
    """The whole page, below the fold too (DevTools' capture beyond the viewport)."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png",
                                                             "captureBeyondViewport": True})
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG"), name
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        (Path(SHOTS) / f"{name}.png").write_bytes(png)


def _record(driver) -> dict[str, str]:
    """The dataset page's ledger record, field -> text."""
    rows = _find(driver, "#ledger-record").find_elements("css selector", "tr")
    return {r.find_element("css selector", "th").text: r.find_element("css selector", "td").text
            for r in rows}


def _upload(driver, url: str, table: Path, schema: Path) -> None:
    driver.get(url + "upload")
    _find(driver, "#table").send_keys(str(table))
    _find(driver, "#schema").send_keys(str(schema))
    _find(driver, "#name").send_keys("people")
    _find(driver, "#check").click()


def _analysis(driver, url: str, script: str, action: str) -> None:
    driver.get(url + "analyses")
    box = _find(driver, "#script")
    box.clear()
    box.send_keys(script)
    _find(driver, "#dev_sign").click()
    _find(driver, f"#btn-{action}").click()


@browser_missing
def test_a_bad_row_is_shown_in_its_cell_and_nothing_is_shared(console, browser, files):
    url, _ = console
    _upload(browser, url, files["bad"], files["schema"])
    failed = _find(browser, "#check-failed")
    assert "1 cell(s) in 1 row(s)" in failed.text
    rows = browser.find_elements("css selector", "#cells tbody tr")
    assert len(rows) == 1
    cells = rows[0].find_elements("css selector", "td, th")
    assert cells[0].text == "7"
    bad = [c for c in cells[1:] if "bad" in c.get_attribute("class")]
    assert len(bad) == 1 and cells.index(bad[0]) == 1 + COLUMNS.index("age")
    assert "forty" in bad[0].text
    assert not browser.find_elements("css selector", "#share")
    _shot(browser, "upload-check-refused")
    browser.get(url + "datasets")
    assert "shared no dataset yet" in _find(browser, "main").text


@browser_missing
def test_upload_checks_every_cell_then_shares_with_progress(console, browser, files):
    url, _ = console
    _upload(browser, url, files["data"], files["schema"])
    assert f"All {ROWS} rows" in _find(browser, "#check-ok").text
    _shot(browser, "upload-check")
    _find(browser, "#share").click()
    _find(browser, "#schema", WAIT)  # the task page follows the share to the dataset page
    names = [r.text.split()[0] for r in browser.find_elements("css selector", "#schema tbody tr")]
    assert names == list(COLUMNS)
    assert "dataset id" in _find(browser, "#ledger-record").text
    _shot(browser, "dataset")
    expiry = _record(browser)["storage paid until"]
    days = _find(browser, "input[name=days]")
    days.clear()
    days.send_keys("400")
    _find(browser, "#renew").click()
    assert _record(browser)["storage paid until"] > expiry  # "YYYY-MM-DD HH:MM UTC" sorts
    from selenium.webdriver.support.ui import Select

    Select(_find(browser, "select[name=policy]")).select_by_visible_text("open")
    _find(browser, "#change-policy").click()
    assert _record(browser)["policy"] == "open"
    browser.get(url + "datasets")
    row = _find(browser, "#datasets tbody tr").text
    assert row.startswith(f"people {ROWS} {len(COLUMNS)} 2-of-3") and row.endswith("open")
    _shot(browser, "datasets")


@browser_missing
def test_a_leaking_script_is_refused_on_its_line(console, browser, files):
    url, _ = console
    _analysis(browser, url, LEAK, "check")
    assert "line 2" in _find(browser, "#finding").text
    flagged = _find(browser, "#flagged-line")
    assert "if total > 1000" in flagged.text
    lines = browser.find_elements("css selector", "#listing li")
    assert lines.index(flagged) == 1
    _shot(browser, "analysis-refused")


@browser_missing
def test_a_script_is_checked_dry_run_and_estimated_before_anything_is_paid(console, browser):
    url, con = console
    jobs_before = len(con.network().jobs())
    _analysis(browser, url, SCRIPT, "estimate")
    assert "No private value can leak: 2 result(s)" in _find(browser, "#check-ok").text
    dry = _find(browser, "#dry-run").text
    assert "workers" in dry and "mean_age" in dry
    fee = float(_find(browser, "#fee").text.split()[0])
    assert fee > 0
    _shot(browser, "analysis-estimate")
    assert len(con.network().jobs()) == jobs_before


@browser_missing
def test_a_job_runs_with_progress_and_its_labelled_result_chart_and_record(console, browser,
                                                                           files):
    url, con = console
    _analysis(browser, url, SCRIPT, "run")
    task = _find(browser, "#task").get_attribute("data-url")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, WAIT).until(  # the phases as they come (or already the result)
        lambda d: "computing" in d.page_source or d.find_elements("css selector", "#values"))
    _shot(browser, "job-progress")
    _find(browser, "#values", WAIT)
    job_id = max(con.finished)
    table = pacsv.read_csv(files["data"],
                           convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
    age = table.column("age").to_numpy()
    joblost = np.asarray(table.column("joblost").to_pylist())
    levels = Schema.load(files["schema"]).column("joblost").levels
    shown = {}
    for tr in browser.find_elements("css selector", "#values tbody tr"):
        name, label, value, error = tr.find_elements("css selector", "td")
        shown[(name.text, label.text)] = (float(value.text), float(error.text.split()[-1]))
    value, error = shown[("mean_age", "")]
    assert abs(value - age.mean()) <= error + 1e-4
    worker_rows = {label: v for (name, label), (v, _) in shown.items() if name == "workers"}
    axes = getattr(con.finished[job_id].outputs["workers"], "axes", ())
    expected = list(levels) if axes else [str(i) for i in range(len(levels))]
    assert list(worker_rows) == expected  # labelled by the checker's names where it gives them
    assert list(worker_rows.values()) == [float((joblost == lv).sum()) for lv in levels]
    bars = browser.find_elements("css selector", "#chart-workers svg rect.bar")
    assert len(bars) == len(levels)
    assert _find(browser, "#chain-status").text == "accepted"
    assert len(browser.find_elements("css selector", "#quorum tr")) == 3
    _shot(browser, "result")
    with urllib.request.urlopen(url.rstrip("/") + task) as reply:
        phases = json.loads(reply.read())["phases"]
    assert [p.split(":")[0] for p in phases] == [
        "INSECURE test dealer", "posting the job on the ledger", f"job {job_id}",
        "checking the result and settling", f"job {job_id}"]
    with urllib.request.urlopen(f"{url}results/{job_id}.json") as reply:
        body = json.loads(reply.read())
    assert [r["value"] for r in body["results"] if r["result"] == "workers"] == list(
        worker_rows.values())
    with urllib.request.urlopen(f"{url}results/{job_id}.csv") as reply:
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.read().decode().startswith("result,label,value,error")


@browser_missing
def test_a_job_an_analyst_posted_is_listed_and_runs_only_with_its_own_script(console, browser):
    url, con = console
    network = con.network()
    job = submit(network.analyst(), SCRIPT, network.dataset_id("people"))  # policy: open
    browser.get(url + "analyses")
    listed = [r.text.split()[:2] for r in browser.find_elements("css selector",
                                                                 "#posted tbody tr")]
    assert [str(job.job_id), "people"] in listed
    _shot(browser, "analysis-posted")
    box = _find(browser, "#script")
    box.send_keys(SCRIPT + "reveal(count(data.age), 'n')\n")  # not the script it was paid for
    _find(browser, "#posted_job").send_keys(str(job.job_id))
    _find(browser, "#btn-run").click()
    error = _find(browser, "#task-error:not([hidden])", WAIT).text
    assert f"posted job {job.job_id} was posted for another script" in error
    assert "nothing was run" in error
    assert network.owner.ledger.job(job.job_id).status.name == "OPEN"


@browser_missing
def test_the_network_page_shows_nodes_stake_and_health(console, browser):
    url, _ = console
    browser.get(url + "network")
    rows = browser.find_elements("css selector", "#nodes tbody tr")
    assert len(rows) == 3
    assert all("1.000 ETH" in r.text and "healthy" in r.text for r in rows)
    assert all("0 triples" in r.text for r in rows)  # the dealer's jobs spend no stock
    _find(browser, "#no-accusations")
    _shot(browser, "network")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@browser_missing
def test_a_chain_that_is_down_is_one_line_and_the_console_keeps_serving(console, browser,
                                                                         tmp_path):
    _, con = console
    down = Context(rpc=f"http://127.0.0.1:{_free_port()}", deployment=con.context.deployment,
                   owner_account=con.context.owner_account, owner_home=str(tmp_path / "owner"))
    server, url, other = start(down)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        browser.get(url + "datasets")
        text = _find(browser, "#error").text
        assert text.startswith(f"no Ethereum JSON-RPC node answers at {down.rpc}: Connection "
                               "refused")
        assert "Traceback" not in text and "\n" not in text
        _shot(browser, "chain-down")
        browser.get(url + "upload")  # a page that needs no chain still works
        _find(browser, "#upload-form")
    finally:
        server.shutdown()
        server.server_close()
        other.close()


def test_a_parquet_table_is_checked_by_the_sharing_reader(files, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pacsv.read_csv(files["data"])
    ages = table.column("age").to_pylist()
    ages[11] = 400  # beyond the schema's range
    pq.write_table(table.set_column(0, "age", pa.array(ages)), tmp_path / "people.parquet")
    report = check_table(tmp_path / "people.parquet", Schema.load(files["schema"]))
    assert report["violations"] == 1 and report["rows"] == ROWS
    (row, cells), = report["grid"]
    assert row == 12 and list(cells) == ["age"] and "400" in cells["age"]
    pq.write_table(table, tmp_path / "good.parquet")
    assert check_table(tmp_path / "good.parquet", Schema.load(files["schema"]))[
        "violations"] == 0


# -- safety, without a browser -------------------------------------------------------------------

@pytest.fixture
def guarded(tmp_path):
    """A console app that requires the login token "right-token" (as off loopback)."""
    context = Context(rpc="http://127.0.0.1:9", deployment=str(tmp_path / "none.json"),
                      owner_home=str(tmp_path / "owner"))
    return create_app(Console(context), login_token="right-token").test_client()


def test_off_loopback_every_page_needs_the_printed_token(guarded):
    for path in ("/datasets", "/upload", "/results", "/network", "/results/1.csv"):
        reply = guarded.get(path)
        assert reply.status_code == 302 and "/login" in reply.headers["Location"]
    assert guarded.get("/upload?token=wrong-token").status_code == 302
    assert guarded.post("/login", data={"token": "wrong", "csrf_token": "x"}).status_code == 400
    with guarded.session_transaction() as session:
        assert not session.get("logged_in")
    assert guarded.get("/upload?token=right-token").status_code == 302
    assert guarded.get("/upload").status_code == 200


def test_a_form_without_this_sessions_csrf_token_changes_nothing(guarded):
    guarded.get("/upload?token=right-token")
    page = guarded.get("/upload").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    forged = guarded.post("/datasets/people/policy", data={"policy": "open"})
    assert forged.status_code == 400 and "CSRF" in forged.get_data(as_text=True)
    wrong = guarded.post("/datasets/people/policy", data={"policy": "open",
                                                          "csrf_token": token + "x"})
    assert wrong.status_code == 400
    # the right token passes the guard; the handler then finds no owner account to act as
    right = guarded.post("/datasets/people/policy", data={"policy": "open", "csrf_token": token})
    text = right.get_data(as_text=True)
    assert "CSRF" not in text and "give account: no context names them" in text


def test_on_loopback_a_page_under_another_name_is_refused(tmp_path):
    """DNS rebinding: another site's name pointed at 127.0.0.1 reads nothing."""
    context = Context(rpc="http://127.0.0.1:9", deployment=str(tmp_path / "none.json"))
    client = create_app(Console(context)).test_client()
    assert client.get("/upload", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert client.get("/upload", headers={"Host": "localhost:8765"}).status_code == 200
    rebound = client.get("/results", headers={"Host": "evil.example:8765"})
    assert rebound.status_code == 400 and "127.0.0.1 and localhost only" in rebound.get_data(
        as_text=True)


def test_charts_bars_for_vectors_points_for_centers_none_for_a_number():
    from enigma.app.console.charts import chart

    bars = chart(np.array([3.0, -1.0, 2.0]), np.array([0.5, 0.0, 0.0]), ["a", "b", "c"], "t")
    assert str(bars).count('class="bar"') == 3 and str(bars).count('class="whisker"') == 1
    assert ">a<" in str(bars) and "a: 3 (± 0.5)" in str(bars)
    centers = chart(np.arange(12.0).reshape(3, 4), np.zeros((3, 4)), [], "centers")
    assert str(centers).count('class="point"') == 3
    assert chart(np.array(4.0), np.array(0.0), [], "n") is None
    assert "&lt;script&gt;" in str(chart(np.ones(2), np.zeros(2), ["<script>", "b"], "x"))


def test_the_console_listens_on_loopback_unless_told_and_then_logs_in():
    assert safety.is_loopback("127.0.0.1") and safety.is_loopback("::1")
    assert not safety.is_loopback("0.0.0.0") and not safety.is_loopback("192.168.1.4")
    from click.testing import CliRunner

    from enigma.app.console.command import console_command

    refused = CliRunner().invoke(console_command, ["--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "--allow-remote" in refused.output
    assert login_token("127.0.0.1") is None
    tokens = {login_token("0.0.0.0") for _ in range(3)}
    assert len(tokens) == 3 and all(t and len(t) >= 40 for t in tokens)
    server, url, _ = start(Context(rpc="http://127.0.0.1:9", deployment="none.json"))
    try:
        assert url.startswith("http://127.0.0.1:") and "token=" not in url
    finally:
        server.server_close()
