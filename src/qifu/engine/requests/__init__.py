"""Enterprise requests (企业诉求), the Django-free part: the categories and their default
departments and time limits (``categories``), working days (``workdays``), the request state
machine (``workflow``), routing a text to a category (``routing``) and finding a likely
duplicate (``similar``)."""
