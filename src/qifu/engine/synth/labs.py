"""The synthetic county's shared-lab catalogue (an addition to the contract: labs.csv, one row
per instrument): company labs of manufacturers opened to other firms, as in Xiaoshan's model,
a public testing centre, an institute and a university's lab, in the county's main industries
(appliances, auto parts, moulds, bearings, textiles). Names and phone numbers are made up."""

from __future__ import annotations

import numpy as np
import polars as pl

from qifu.engine.contract import LABS
from qifu.engine.synth.words import GIVEN, SURNAMES

# (instrument, capabilities, standards, yuan per hour, slot minutes, units)
INSTRUMENTS = [
    ("中性盐雾试验箱", "金属镀层、涂层耐腐蚀 盐雾试验 中性盐雾 醋酸盐雾", "GB/T 10125 GB/T 2423.17", 80, 240, 2),
    ("三坐标测量机", "汽车零部件 模具 尺寸 形位公差 精密测量", "GB/T 16857", 300, 60, 1),
    ("电磁兼容测试系统", "家用电器 电动工具 传导发射 辐射发射 抗扰度 EMC", "GB 4343.1 GB/T 17626", 600, 120, 1),
    ("高低温交变湿热试验箱", "高温 低温 湿热 温度循环 环境可靠性", "GB/T 2423.1 GB/T 2423.2 GB/T 2423.3", 60, 240, 3),
    ("扫描电子显微镜", "断口分析 微观形貌 能谱 材料失效分析 SEM", "GB/T 17359", 500, 60, 1),
    ("万能材料试验机", "拉伸 压缩 弯曲 剥离 金属 塑料 力学性能", "GB/T 228.1 GB/T 1040", 150, 60, 1),
    ("直读光谱仪", "金属材料化学成分 碳钢 不锈钢 铝合金 铜合金 牌号鉴定", "GB/T 4336 GB/T 7999", 120, 30, 1),
    ("家电能效测试台", "冰箱 空调 洗衣机 能效等级 耗电量 噪声", "GB 12021.2 GB 21455", 200, 120, 2),
    ("轴承振动噪声测量仪", "滚动轴承 振动 噪声 异音 寿命", "GB/T 24610 JB/T 7047", 100, 60, 1),
    ("色牢度与纺织检测仪", "纺织品 色牢度 耐洗 耐摩擦 起毛起球 甲醛", "GB/T 3920 GB/T 2912.1", 90, 60, 2),
    ("注塑件熔融指数仪", "塑料 熔体流动速率 注塑 原料检验", "GB/T 3682.1", 50, 30, 1),
    ("X射线荧光光谱仪", "RoHS 有害物质 铅 镉 汞 电子电器 出口", "IEC 62321", 150, 60, 1),
    ("电气安全综合测试仪", "家用电器安全 耐压 泄漏电流 接地电阻 绝缘电阻", "GB 4706.1", 120, 60, 2),
    ("疲劳试验机", "汽车零部件 疲劳寿命 弹簧 紧固件", "GB/T 3075", 250, 240, 1),
]

# run only by a firm's staff the lab has trained (上机资格); others send samples in (送检)
NEEDS_TRAINING = {"扫描电子显微镜"}

LABS_PLAN = [
    # (name pattern, owner kind, instruments)
    ("{firm}检测中心（开放实验室）", "company", [0, 3, 12]),
    ("{firm}理化实验室", "company", [5, 6, 10]),
    ("{firm}精密测量实验室", "company", [1, 13]),
    ("{firm}家电检测实验室", "company", [2, 7, 11]),
    ("{firm}轴承检测实验室", "company", [8, 6]),
    ("{county}检验检测公共服务平台", "public", [0, 2, 3, 7, 11, 12]),
    ("{county}新材料研究院测试中心", "institute", [4, 5, 6, 11]),
    ("某大学{county}研究院材料实验室", "university", [4, 9, 13]),
    ("{county}纺织服装检测站", "public", [9, 5]),
]


def make(registry: pl.DataFrame, rng: np.random.Generator, county: str = "慈溪市") -> pl.DataFrame:
    firms = registry.filter((pl.col("status") == "active") & (pl.col("entity_type") == "enterprise")
                            & pl.col("industry_code").str.starts_with("C").fill_null(False))
    if firms.height == 0:
        firms = registry.filter(pl.col("entity_type") == "enterprise")
    order = rng.permutation(firms.height)
    rows, f = [], 0
    for n, (pattern, kind, instruments) in enumerate(LABS_PLAN, start=1):
        if kind == "company" and firms.height:
            firm = firms.row(int(order[f % firms.height]), named=True)
            f += 1
            owner, uscc, town = firm["name"], firm["uscc"], firm["town"]
            name = pattern.format(firm=firm["name"].removesuffix("有限公司").removesuffix("股份"), county=county)
        else:
            owner = name = pattern.format(firm="", county=county)
            uscc, town = None, registry["town"][int(rng.integers(registry.height))]
        opens, closes = ("08:30", "16:30") if n % 2 else ("08:00", "20:00")
        contact = SURNAMES[int(rng.integers(len(SURNAMES)))] + GIVEN[int(rng.integers(len(GIVEN)))]
        phone = f"0574-6{int(rng.integers(0, 10**7)):07d}"
        address = f"{town}科创路{int(rng.integers(1, 400))}号"
        for k, i in enumerate(instruments, start=1):
            inst, caps, standards, price, minutes, units = INSTRUMENTS[i]
            rows.append({
                "lab_code": f"LAB{n:03d}", "lab_name": name, "owner_kind": kind, "owner_name": owner,
                "owner_uscc": uscc, "town": town, "address": address,
                "accreditation": "CMA CNAS" if kind != "university" else "CNAS", "accredited_until": "2028-06-30",
                "open_days": "12345" if n % 3 else "123456", "opens": opens, "closes": closes,
                "contact_name": contact, "contact_phone": phone, "voucher_ok": "是",
                "needs_approval": "是" if kind == "university" else "否",
                "retain_days": {"public": 30, "company": 7}.get(kind, 15),
                "instrument_code": f"I{k:02d}", "instrument_name": inst, "capabilities": caps, "standards": standards,
                "price_per_hour": str(price), "slot_minutes": minutes if _fits(opens, closes, minutes) else 60,
                "units": units, "needs_training": "是" if inst in NEEDS_TRAINING else "否",
            })
    return pl.DataFrame(rows, schema={f.name: (pl.Int64 if f.name in ("slot_minutes", "units") else pl.Utf8)
                                      for f in LABS.fields})


def _fits(opens: str, closes: str, minutes: int) -> bool:
    span = (int(closes[:2]) * 60 + int(closes[3:])) - (int(opens[:2]) * 60 + int(opens[3:]))
    return span % minutes == 0
