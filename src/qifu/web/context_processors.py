from qifu import config


def demo(request):
    """Whether this is `qifu demo`: every page then says so (a simulated county, and a filing
    season played ahead of today's date)."""
    return {"demo": config.is_demo()}
