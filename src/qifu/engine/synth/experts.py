"""The synthetic expert library (an addition to the contract: experts.csv): professors and
engineers of made-up universities and institutes, each with fields from the county's industry
chains and the disciplines behind them, skills and past projects. Names, phones and
institutions are made up; about four in five consent to be shown to firms. The results library
(achievements.csv) holds results of the same experts' projects, ready or not for a firm."""

from __future__ import annotations

import numpy as np
import polars as pl

from qifu.engine.contract import ACHIEVEMENTS, EXPERTS
from qifu.engine.synth.words import GIVEN, SURNAMES

# (field, skills, project stems)
AREAS = [
    ("家用电器 电机控制", "变频控制 无刷电机 电机驱动 能效优化 噪声振动", ["变频空调压缩机控制", "洗衣机直驱电机", "小家电电机降噪"]),
    ("家用电器 智能家居", "嵌入式软件 物联网 WiFi模组 APP 语音交互", ["智能家电联网平台", "家电语音控制模组"]),
    ("汽车零部件 精密制造", "精密加工 数控 公差分析 三坐标测量 质量控制", ["汽车转向节精密加工", "发动机零件尺寸控制"]),
    ("汽车零部件 新能源汽车", "动力电池 热管理 电驱动 轻量化", ["电池包液冷板", "电驱壳体轻量化设计"]),
    ("模具 注塑", "注塑模具设计 模流分析 冷却水路 缩痕翘曲", ["家电外壳注塑模具", "汽车内饰件模流分析"]),
    ("轴承 机械设计", "滚动轴承 寿命预测 润滑 振动噪声 失效分析", ["深沟球轴承降噪", "轴承寿命试验方法"]),
    ("新材料 高分子", "改性塑料 阻燃 耐候 复合材料 材料配方", ["无卤阻燃改性PP", "长玻纤增强材料"]),
    ("新材料 金属材料", "热处理 表面处理 电镀 耐腐蚀 盐雾 涂层", ["紧固件表面防腐涂层", "铝合金阳极氧化工艺"]),
    ("纺织服装 功能面料", "纺织染整 功能整理 色牢度 抗菌 吸湿速干", ["抗菌面料整理工艺", "再生纤维面料开发"]),
    ("工业自动化 机器人", "工业机器人 视觉检测 PLC 自动化产线 机器视觉", ["注塑件视觉检测系统", "装配线机器人改造"]),
    ("电子信息 电源", "开关电源 电磁兼容 EMC 电路设计 可靠性", ["家电电源EMC整改", "LED驱动电源设计"]),
    ("节能环保 废水处理", "电镀废水 膜处理 VOCs治理 节能改造 碳排放核算", ["电镀园区废水回用", "喷涂VOCs治理"]),
    ("食品 农产品加工", "食品工艺 保鲜 杨梅加工 检测 冷链", ["杨梅深加工保鲜", "榨菜低盐工艺"]),
    ("工业软件 数字化", "MES 数字化车间 ERP 数据分析 工业互联网", ["中小企业数字化车间", "设备联网数据采集"]),
]
INSTITUTIONS = ["某理工大学", "某工业大学", "某大学材料学院", "某科学院材料研究所", "某大学机械工程学院", "某职业技术学院",
                "某大学电气学院", "某省机电研究院", "某大学化工学院", "某大学纺织学院"]
TITLES = ["教授", "副教授", "研究员", "副研究员", "高级工程师", "正高级工程师"]


def make(n: int, rng: np.random.Generator) -> pl.DataFrame:
    rows = []
    for k in range(1, n + 1):
        area = AREAS[int(rng.integers(len(AREAS)))]
        second = AREAS[int(rng.integers(len(AREAS)))] if rng.random() < 0.3 else None
        skills = rng.permutation(area[1].split())[: int(rng.integers(3, 6))].tolist()
        if second is not None:
            skills += rng.permutation(second[1].split())[:2].tolist()
        projects = "；".join(rng.permutation(area[2])[: int(rng.integers(1, len(area[2]) + 1))].tolist())
        rows.append({
            "expert_code": f"EX{k:05d}", "name": SURNAMES[int(rng.integers(len(SURNAMES)))] + "".join(
                GIVEN[int(rng.integers(len(GIVEN)))] for _ in range(int(rng.integers(1, 3)))),
            "institution": INSTITUTIONS[int(rng.integers(len(INSTITUTIONS)))],
            "title": TITLES[int(rng.integers(len(TITLES)))],
            "fields": area[0] + ("、" + second[0] if second else ""), "skills": " ".join(skills), "projects": projects,
            "availability": str(rng.choice(["available", "available", "available", "limited", "unavailable"])),
            "phone": f"13{int(rng.integers(0, 10**9)):09d}", "email": f"expert{k}@example.edu.cn",
            "consent": "是" if rng.random() < 0.8 else "否",
        })
    return pl.DataFrame(rows, schema={f.name: pl.Utf8 for f in EXPERTS.fields})


SUMMARY = "{holder}在{field}方向的研究成果，基于{skills}，来自“{project}”项目。{ripe}可按{transfer}方式与企业合作。"
RIPE = {"lab": "已完成实验室验证，", "pilot": "已完成小试和中试，", "ready": "已在企业试用，可直接产业化，"}


def make_achievements(experts: pl.DataFrame, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """At most ``n`` results, one per project of the library's experts (the expert is its
    contact), in the expert's own field; one in eight kept from firms."""
    rows, titles = [], set()  # the projects taken
    for k in range(1, n + 1):
        for _ in range(50):  # one result per project: another expert's if this one is taken
            e = experts.row(int(rng.integers(experts.height)), named=True)
            project = str(rng.choice(e["projects"].split("；")))
            if project not in titles:
                break
        else:
            break  # every project of the library has its result
        titles.add(project)
        title = project + ("" if project.endswith(("系统", "工艺", "平台", "方法", "设计", "方案", "模组"))
                           else str(rng.choice(["技术", "关键技术", "新工艺"])))
        maturity = str(rng.choice(["lab", "pilot", "pilot", "ready", "ready"]))
        transfer = str(rng.choice(["transfer", "license", "joint", "joint", "equity"]))
        field = e["fields"].split("、")[0]
        rows.append({
            "achievement_code": f"CG{k:04d}", "title": title,
            "summary": SUMMARY.format(holder=e["institution"], field=field, skills="、".join(e["skills"].split()[:3]),
                                      project=project, ripe=RIPE[maturity],
                                      transfer=dict(_TRANSFER_WORDS)[transfer]),
            "fields": field, "holder": e["institution"], "expert_code": e["expert_code"], "maturity": maturity,
            "transfer": transfer, "price": str(int(rng.integers(5, 200)) * 5) if rng.random() < 0.6 else None,
            "public": "否" if k % 8 == 0 else "是",  # one in eight kept from firms
        })
    return pl.DataFrame(rows, schema={f.name: pl.Utf8 for f in ACHIEVEMENTS.fields})


_TRANSFER_WORDS = (("transfer", "转让"), ("license", "许可使用"), ("joint", "合作开发"), ("equity", "作价入股"))
