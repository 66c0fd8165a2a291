"""Expert matching (issue 16's speed target; results in docs/benchmarks.md): a library of
``--experts`` (5,000) imported with `qifu import experts`; then, in one process, the ranked
experts for 300 needs written as firms write them, through ``experts.actions.rank`` (the
library's version check, jieba, BM25 over every expert, the matched words). The index is built
once per process and whenever an expert changes; its build is timed apart.

    .venv/bin/python bench/experts_match.py --experts 5000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RUN = r"""
import os, random, statistics, time, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from qifu.experts import actions
from qifu.engine.assistant import retrieval
t = time.perf_counter(); retrieval.default(); jieba_s = time.perf_counter() - t
t = time.perf_counter(); actions.index(); build = time.perf_counter() - t
problems = ["注塑外壳表面缩痕翘曲，想做模流分析优化冷却水路", "家电电源板传导发射超标需要EMC整改", "汽车转向节精密加工尺寸不稳定",
            "紧固件镀锌层盐雾试验不过关，想改进表面处理", "洗衣机电机噪声大，想降噪", "想上MES做数字化车间，设备联网采集数据",
            "轴承异音返修多，想做失效分析", "改性PP阻燃达不到UL94 V0", "杨梅深加工保鲜期太短", "电镀废水回用达标排放",
            "面料色牢度不合格出口被退货", "装配线想用机器人和视觉检测替代人工", "动力电池包液冷板设计", "智能家电联网模组选型"]
rng = random.Random(5)
texts = [rng.choice(problems) + "，" + rng.choice(problems)[:8] for _ in range(300)]
actions.rank(texts[0])
times, hits = [], 0
for text in texts:
    t = time.perf_counter()
    found = actions.rank(text, 10)
    times.append((time.perf_counter() - t) * 1000)
    hits += bool(found)
times.sort()
print(f"jieba and the assistant's words loaded {jieba_s * 1000:.0f} ms; index of the library built {build * 1000:.0f} ms")
print(f"rank 10 experts for a need: p50 {statistics.median(times):.1f} ms, p95 {times[int(len(times) * 0.95)]:.1f} ms, "
      f"max {times[-1]:.1f} ms; {hits} of {len(texts)} needs found experts")
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--experts", type=int, default=5000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qifu-experts-bench-"))
    env = dict(os.environ, QIFU_DATA_DIR=str(work / "var"), QIFU_SECRET_KEY="bench-" + "k" * 50)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from qifu.engine.synth import experts

    experts.make(args.experts, np.random.default_rng(3)).write_csv(work / "experts.csv")
    subprocess.run([sys.executable, "-m", "qifu", "import", "experts", str(work / "experts.csv")], env=env, check=True,
                   capture_output=True)
    print(f"{args.experts:,} experts imported")
    subprocess.run([sys.executable, "-c", RUN], env=env, check=True)


if __name__ == "__main__":
    main()
