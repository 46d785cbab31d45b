"""Benchmark of the data stage end to end (read -> clean -> PII -> dedupe -> split -> write).

    .venv/bin/python bench/data_tools.py                 # 10k, 100k, 1M rows: new, old and ray engines (~15 min)
    .venv/bin/python bench/data_tools.py --quick         # 10k and 100k rows
    .venv/bin/python bench/data_tools.py --sizes 10000000 --engines new   # the 10M streaming run (~20 min)
    .venv/bin/python bench/data_tools.py --json bench/results/data_tools.json

Engines, run one after another on the same generated files (interleaved per size):
- new: this checkout's stage, data.engine local (a process per core);
- old: the hand-made engine this one replaced, from a git worktree of OLD_COMMIT under bench/.cache;
- ray: this checkout's stage on data.engine ray (a local Ray cluster of data.workers CPUs).

The rows are synthetic FAQ pairs written by this script (seeded): half Japanese, half English,
questions of 15-80 and answers of 40-300 characters assembled from topic vocabularies so most
rows are distinct, with ~5% exact duplicates, ~5% near-duplicates, ~3% personal data (e-mail,
phone, postal code, Luhn-valid card) and ~1% bad rows (empty answer, answer = question, broken
JSON line). They are spread over 4 files: UTF-8 CSV, CP932 CSV (Japanese) and two JSONL files.
Each size runs `tunebot data` in a fresh child process, which reports its own wall time and peak
RSS; data generation is not timed. Targets (issue 3): >= 20,000 rows/s at 1M rows, < 2 GB peak.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD_COMMIT = "8a8ca01"  # the last commit of the old data engine (byte-range segments, Spool, forks, numpy MinHash)
TARGET_ROWS_PER_S = 20_000
TARGET_PEAK_MB = 2048
TARGET_PEAK_10M_MB = 4096

EN_TOPICS = ("return", "refund", "exchange", "shipping", "delivery", "invoice", "receipt", "coupon", "points",
             "warranty",
             "repair", "password", "account", "address", "payment", "card", "bank transfer", "gift wrap", "app",
                 "login")
EN_OBJECTS = ("kettle", "blender", "rice cooker", "desk lamp", "office chair", "bookshelf", "phone case", "charger",
              "headphones", "backpack", "umbrella", "water bottle", "towel set", "coffee mill", "toaster", "humidifier",
              "air purifier", "monitor arm", "keyboard", "mouse", "camera strap", "tripod", "lunch box", "frying pan")
EN_ASKS = ("How do I {t} my {o}?", "Can I {t} a {o} I bought last week?", "What is your policy on {t} for the {o}?",
           "Is {t} possible for an opened {o}?", "My {o} arrived today, how does {t} work?",
               "Where can I check {t} for my {o}?",
           "Do you offer {t} on the {o} in {c}?", "Why is {t} not available for the {o}?")
EN_SAYS = ("You can arrange {t} for the {o} from My page within {n} days.", "For the {o}, {t} takes {n} business days.",
           "{T} for the {o} is free when the order is over {m} yen.",
               "Please open Order history, choose the {o} and select {t}.",
           "The {o} is covered: {t} is handled by our {c} center.", "We accept {t} requests for the {o} until day {n}.")
JA_TOPICS = ("返品", "返金", "交換", "配送", "お届け日", "請求書", "領収書", "クーポン", "ポイント", "保証", "修理",
             "パスワード", "会員登録", "住所変更", "支払い方法", "カード決済", "銀行振込", "ギフト包装", "アプリ",
                 "ログイン")
JA_OBJECTS = ("電気ケトル", "ミキサー", "炊飯器", "デスクライト", "オフィスチェア", "本棚", "スマホケース", "充電器",
              "ヘッドホン", "リュック", "折りたたみ傘", "水筒", "タオルセット", "コーヒーミル", "トースター", "加湿器",
              "空気清浄機", "モニターアーム", "キーボード", "マウス", "カメラストラップ", "三脚", "弁当箱",
                  "フライパン")
JA_ASKS = ("{o}の{t}はできますか？", "先週買った{o}の{t}について教えてください。", "{o}の{t}の条件は何ですか？",
           "開封済みの{o}でも{t}は可能ですか？", "{c}で購入した{o}の{t}はどうすればいいですか？",
               "{o}の{t}がうまくいきません。")
JA_SAYS = ("{o}の{t}はマイページから{n}日以内に承ります。", "{o}の{t}には{n}営業日ほどかかります。",
           "{m}円以上のご注文なら{o}の{t}は無料です。", "注文履歴から{o}を選び、「{t}」を押してください。",
           "{o}の{t}は{c}の窓口で対応しております。", "{o}は{n}日目まで{t}を受け付けております。")
CITIES = ("Tokyo", "Osaka", "Nagoya", "Sapporo", "Fukuoka", "Sendai", "Kobe", "Kyoto")
JA_CITIES = ("東京", "大阪", "名古屋", "札幌", "福岡", "仙台", "神戸", "京都")


def _luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randint(0, 9) for _ in range(14)]
    total = sum(d if i % 2 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
    digits.append((10 - total % 10) % 10)
    text = "".join(map(str, digits))
    return " ".join(text[i : i + 4] for i in range(0, 16, 4))


def _pii(rng: random.Random, ja: bool) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        user = f"user{rng.randint(1, 99999)}"
        return f" 連絡先: {user}@example.jp" if ja else f" Mail me at {user}@example.com."
    if kind == 1:
        digits = f"{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
        return f" 電話は090-{digits}です。" if ja else f" Call 03-{digits}."
    if kind == 2:
        code = f"〒{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
        return f" 住所は{code}です。" if ja else f" Ship to {code}."
    return f" カード{_luhn_card(rng)}で払いました。" if ja else f" I paid with card {_luhn_card(rng)}."


def make_pair(rng: random.Random, ja: bool) -> tuple[str, str]:
    """Returns one synthetic (question, answer), Japanese or English."""
    asks, says, topics, objects, cities = (JA_ASKS, JA_SAYS, JA_TOPICS, JA_OBJECTS, JA_CITIES) if ja else (EN_ASKS,
            EN_SAYS, EN_TOPICS, EN_OBJECTS, CITIES)
    fill = {"t": rng.choice(topics), "o": rng.choice(objects), "c": rng.choice(cities), "n": rng.randint(2, 90),
            "m": rng.randint(2, 30) * 500}
    fill["T"] = fill["t"].capitalize()
    question = rng.choice(asks).format(**fill)
    # a second sentence: real FAQs rarely repeat a question verbatim with another answer
    extra = {"t": rng.choice(topics), "o": rng.choice(objects), "c": rng.choice(cities), "n": fill["n"], "m": fill["m"],
             "T": ""}
    question += (" " if not ja else "") + rng.choice(asks).format(**extra)
    answer = " ".join(rng.choice(says).format(**{**fill, "t": rng.choice(topics), "o": rng.choice(objects)})
                      for _ in range(rng.randint(1, 4)))
    return question, answer


def generate(rows: int, folder: Path, seed: int = 0) -> list[Path]:
    """Writes `rows` synthetic rows into 4 files in `folder` and returns their paths."""
    rng = random.Random(seed)
    files = [folder / "faq_en.csv", folder / "faq_ja_cp932.csv", folder / "faq_a.jsonl", folder / "faq_b.jsonl"]
    handles = [open(files[0], "w", encoding="utf-8", newline=""), open(files[1], "w", encoding="cp932", newline=""),
               open(files[2], "w", encoding="utf-8"), open(files[3], "w", encoding="utf-8")]
    writers = [csv.writer(handles[0]), csv.writer(handles[1])]
    writers[0].writerow(["question", "answer", "category"])
    writers[1].writerow(["質問", "回答", "カテゴリ"])
    recent: list[tuple[str, str]] = []
    for index in range(rows):
        target = index % 4
        ja = target == 1 or (target >= 2 and rng.random() < 0.5)
        roll = rng.random()
        if roll < 0.05 and recent:
            question, answer = rng.choice(recent)  # exact duplicate
        elif roll < 0.10 and recent:
            question, answer = rng.choice(recent)
            question = question.rstrip("?？") + ("!" if not ja else "！")  # near duplicate
        else:
            question, answer = make_pair(rng, ja)
            if roll < 0.13:
                question += _pii(rng, ja)
            recent = (recent + [(question, answer)])[-500:]
        if 0.13 <= roll < 0.14:
            answer = "" if roll < 0.135 else question  # bad rows
        if target < 2:
            writers[target].writerow([question, answer, "返品" if "返" in question else "general"])
        elif roll >= 0.998:
            handles[target].write('{"question": "broken line\n')
        else:
            handles[target].write(json.dumps({"question": question, "answer": answer}, ensure_ascii=False) + "\n")
    for handle in handles:
        handle.close()
    return files


def write_config(folder: Path, files: list[Path]) -> Path:
    """Writes the run config for the generated files."""
    sources = "\n".join(f"    - {{path: {json.dumps(str(path))}}}" for path in files)
    config = folder / "bench.yaml"
    config.write_text(
        f"name: bench\nruns_dir: {json.dumps(str(folder / 'runs'))}\nmodel: default\nsystem_prompt: S\n"
        f"data:\n  sources:\n{sources}\n  split: {{val: 0.05, test: 0.05, seed: 0}}\n",
        encoding="utf-8",
    )
    return config


def _pss_mb(pid: int | str) -> float:
    """Returns a process's proportional set size (shared pages divided among their users), in MB."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("Pss:")) / 1024
    except (OSError, StopIteration):
        return 0.0


def _children(pid: str = "self") -> list[str]:
    """Returns every descendant process (forkserver workers and Ray's processes are grandchildren)."""
    pids = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                pids += (task / "children").read_text().split()
            except OSError:
                pass
    except OSError:
        return []
    return pids + [grandchild for child in pids for grandchild in _children(child)]


def _sample_memory(peak: list[float], stop: threading.Event) -> None:
    """Keeps the largest PSS of this process plus its worker processes seen so far in peak[0]."""
    while not stop.wait(0.2):
        peak[0] = max(peak[0], _pss_mb("self") + sum(_pss_mb(pid) for pid in _children()))


def child(config: str, root: str) -> None:
    """Runs the data stage of the checkout at `root` in this process; prints wall time and peak memory as JSON."""
    sys.path.insert(0, root)
    from tunebot.cli import main

    peak, stop = [0.0], threading.Event()
    sampler = threading.Thread(target=_sample_memory, args=(peak, stop), daemon=True)
    sampler.start()
    began = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            code = main(["data", config])
        finally:
            sys.stdout = stdout
    wall = time.perf_counter() - began
    stop.set()
    sampler.join()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"code": code, "wall_s": wall, "peak_mb": peak_mb, "peak_total_mb": max(peak[0], peak_mb)}))
    sys.exit(code)  # the CLI returns 2 on a known error (message on stderr): measure() shows it


def old_checkout() -> Path:
    """Returns a git worktree of OLD_COMMIT under bench/.cache (made on first use)."""
    folder = ROOT / "bench" / ".cache" / f"old-engine-{OLD_COMMIT}"
    if not folder.is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), OLD_COMMIT], check=True,
                       capture_output=True)
    return folder


def run_engine(engine: str, folder: Path, config: Path, rows: int) -> dict:
    """Runs one engine's data stage in a child process on the generated files; returns the figures."""
    root = old_checkout() if engine == "old" else ROOT
    if engine == "ray":
        config.write_text(config.read_text(encoding="utf-8") + "  engine: ray\n", encoding="utf-8")
    shutil.rmtree(folder / "runs", ignore_errors=True)
    try:
        done = subprocess.run([sys.executable, __file__, "--child", str(config), "--root", str(root)],
                              capture_output=True,
                              text=True, check=False, cwd=root, env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    finally:
        config.write_text(config.read_text(encoding="utf-8").replace("  engine: ray\n", ""), encoding="utf-8")
    if done.returncode != 0:
        raise SystemExit(f"{engine}: data stage failed on {rows} rows:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    report = json.loads((folder / "runs" / "bench" / "data" / "report.json").read_text(encoding="utf-8"))
    if report["rows_in"] != rows or report["kept"] + report["rejected"] != rows:
        raise SystemExit(
            f"{engine}: accounting broken at {rows} rows: {report['rows_in']=} {report['kept']=} {report['rejected']=}")
    return {
        "engine": engine, "rows": rows, "wall_s": round(figures["wall_s"], 1),
            "rows_per_s": round(rows / figures["wall_s"]),
        "peak_mb": round(figures["peak_mb"]),
        # memory in use at once: this process and every descendant, shared pages counted once (PSS, sampled)
        "peak_total_mb": round(figures["peak_total_mb"]),
        "kept": report["kept"], "rejected": report["rejected"], "exact_dupes": report["duplicates"]["exact"],
        "near_dupes": report["duplicates"]["near"], "pii": sum(report["pii"]["found"].values()),
            "splits": report["splits"],
        "outputs": _digest(folder / "runs" / "bench" / "data"),
    }


def _digest(data: Path) -> str:
    """A hash of the split files and rejects: equal for engines whose outputs are equal record for record."""
    import hashlib

    digest = hashlib.sha256()
    for name in ("train.jsonl", "val.jsonl", "test.jsonl", "rejects.jsonl"):
        with open(data / name, "rb") as handle:
            while block := handle.read(1 << 24):
                digest.update(block)
    return digest.hexdigest()[:12]


def measure(rows: int, engines: list[str], keep: Path | None) -> list[dict]:
    """Generates `rows` rows once, then runs each engine on them in turn; returns their figures."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"tunebot-bench-{rows}-", dir=keep))
    try:
        files = generate(rows, folder)
        config = write_config(folder, files)
        os.sync()  # the input is on disk, as a user's files are: its writeback does not compete with the run
        results = []
        for engine in engines:
            results.append(run_engine(engine, folder, config, rows))
            print(f"{rows:,} rows, {engine}: {results[-1]['wall_s']} s", file=sys.stderr)
        return results
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def table(results: list[dict]) -> str:
    """Returns the printed table, with the targets checked on every row and each engine's speed against new."""
    head = (
        f"{'rows':>10} {'engine':>6} {'wall s':>7} {'rows/s':>8} {'vs new':>6} {'peak MB':>8} {'kept':>9} "
        f"{'rejected':>8} "
            f"{'exact':>7} {'near':>6} {'pii':>6} {'outputs':>12}  target")
    lines = [head]
    for r in results:
        new = next((other for other in results if other["rows"] == r["rows"] and other["engine"] == "new"), r)
        limit = TARGET_PEAK_10M_MB if r["rows"] >= 10_000_000 else TARGET_PEAK_MB
        ok = (r["rows_per_s"] >= TARGET_ROWS_PER_S or r["rows"] >= 10_000_000) and r["peak_total_mb"] < limit
        lines.append(
            f"{r['rows']:>10,} {r['engine']:>6} {r['wall_s']:>7.1f} {r['rows_per_s']:>8,} "
            f"{new['wall_s'] / r['wall_s']:>6.2f} "
                     f"{r['peak_total_mb']:>8,} {r['kept']:>9,} {r['rejected']:>8,} {r['exact_dupes']:>7,} "
                     f"{r['near_dupes']:>6,} "
                     f"{r['pii']:>6,} {r['outputs']:>12}  {'PASS' if ok else 'FAIL'}")
    lines.append(
        f"targets: >= {TARGET_ROWS_PER_S:,} rows/s and peak < {TARGET_PEAK_MB:,} MB at 1M rows; 10M rows: peak < "
                 f"{TARGET_PEAK_10M_MB:,} MB (peak = the stage's process and every descendant, PSS sampled every 0.2 "
                 f"s). "
                 "vs new = new's wall time / this one's; outputs = a hash of the split files and rejects")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated row counts")
    parser.add_argument("--engines", default="new,old,ray", help="comma-separated: new, old, ray")
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows only")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", type=Path, help="keep the generated data under this folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.root)
        return
    sizes = [10_000, 100_000] if args.quick else [int(size) for size in args.sizes.split(",")]
    results = []
    for rows in sizes:
        results += measure(rows, args.engines.split(","), args.keep)
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                   "date": str(date.today())}
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
