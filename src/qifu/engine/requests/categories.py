"""The request categories of contract v1.1 §1.7.1 (the Open311 service codes): their Chinese
names, the county's usual department for each, and the default time limits in working days
(sign for it within 1, answer within 5: issue 13; a county changes them per category)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    department: str
    sign_days: float = 1
    answer_days: float = 5
    keywords: tuple[str, ...] = ()  # the Open311 service's keywords, and words staff search for


CATEGORIES: tuple[Category, ...] = (
    Category("registration", "登记注册与变更", "市场监督管理局", keywords=("营业执照", "变更", "注销", "经营范围", "名称", "法人")),
    Category("annual_report", "年报与信用修复", "市场监督管理局", keywords=("年报", "经营异常", "信用修复", "移出异常名录")),
    Category("tax", "税费与发票", "税务局", keywords=("发票", "退税", "纳税", "增值税", "个税", "税务登记")),
    Category("social_security", "社保与劳动用工", "人力资源和社会保障局", keywords=("社保", "工伤", "劳动合同", "欠薪", "公积金")),
    Category("talent", "招工与人才", "人力资源和社会保障局", keywords=("招工", "招聘", "人才", "落户", "技能培训", "人才公寓")),
    Category("finance", "融资与信贷", "金融工作服务中心", keywords=("贷款", "融资", "授信", "担保", "转贷", "上市")),
    Category("land", "用地与厂房", "自然资源和规划局", keywords=("用地", "厂房", "土地", "不动产", "租赁", "低效用地")),
    Category("construction", "项目审批与验收", "住房和城乡建设局", keywords=("施工许可", "竣工验收", "消防验收", "规划许可", "审批")),
    Category("utilities", "水电气与网络", "供电、供水、燃气、通信单位", keywords=("停电", "用电", "供水", "燃气", "宽带", "电力增容")),
    Category("environment", "环保与能耗", "生态环境局", keywords=("环评", "排污", "能耗", "废水", "废气", "排污许可")),
    Category("policy", "政策申报与兑现", "经济和信息化局", keywords=("补贴", "奖励", "政策", "申报", "兑现", "专精特新")),
    Category("technology", "科技创新与检验检测", "科学技术局", keywords=("高新技术", "研发", "检测", "实验室", "专家", "科技")),
    Category("ip", "知识产权与标准", "市场监督管理局", keywords=("商标", "专利", "标准", "侵权", "版权")),
    Category("trade", "外贸与物流", "商务局", keywords=("出口", "外贸", "报关", "物流", "订单", "展会")),
    Category("safety", "安全生产与消防", "应急管理局", keywords=("安全生产", "消防", "危化品", "隐患", "安全评价")),
    Category("traffic", "道路交通与周边配套", "交通运输局", keywords=("道路", "公交", "停车", "路灯", "交通", "货车通行")),
    Category("legal", "法律服务与纠纷", "司法局", keywords=("纠纷", "欠款", "合同", "律师", "仲裁", "调解")),
    Category("other", "其他", "企业服务中心", keywords=()),
)
BY_CODE = {c.code: c for c in CATEGORIES}
CODES = tuple(BY_CODE)
