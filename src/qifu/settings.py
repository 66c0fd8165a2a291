"""Django settings. Every value comes from the environment through ``qifu.config``."""

from __future__ import annotations

import importlib.util
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

from qifu import config

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = config.data_dir()

DEBUG = config.get_bool("QIFU_DEBUG", False)
# `qifu serve` refuses to start without one (config.require_secret_key); a one-off command that
# signs nothing runs with a key of its own.
SECRET_KEY = config.secret_key() or secrets.token_urlsafe(50)
ALLOWED_HOSTS = (config.get("QIFU_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver") or "").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in (config.get("QIFU_CSRF_TRUSTED_ORIGINS", "") or "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "qifu.registry",
    "qifu.reports",
    "qifu.sources",
    "qifu.reminders",
    "qifu.imports",
    "qifu.checks",
    "qifu.assistant",
    "qifu.accounts",
    "qifu.corrections",
    "qifu.abnormal",
    "qifu.inspections",
    "qifu.portal",
    "qifu.service_requests",
    "qifu.land",
    "qifu.policies",
    "qifu.labs",
    "qifu.experts",
    "qifu.projects",
    "qifu.web",
    "axes",  # staff sign-in lockout
]
# django-ninja's documentation page and its Swagger UI files, from the installed package
# (never its CDN), without ninja as an app: an app is imported at every start of every command,
# and only the server needs ninja (django.setup() took 0.98 s with it, 0.55 s without, in the
# median of six runs). ``qifu.api.Docs`` renders the page through these folders.
NINJA_FOLDER = Path(importlib.util.find_spec("ninja").submodule_search_locations[0])

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "qifu.web.nul.RefuseNul",  # a NUL in a path, parameter or field: refused, never a database error
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "qifu.accounts.middleware.FirstPassword",  # a password someone else set: 修改密码 before anything else
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out sign-in before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
# Staff sign-in (back office and Django admin): five wrong passwords for one account from one
# address lock that pair for 30 minutes; the right password does not unlock it.
AXES_FAILURE_LIMIT = int(config.get("QIFU_STAFF_LOGIN_FAILURES", "5") or 5)
AXES_COOLOFF_TIME = timedelta(minutes=int(config.get("QIFU_STAFF_LOCKOUT_MINUTES", "30") or 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "qifu.accounts.clients.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "web/locked.html"
AXES_VERBOSE = False

ROOT_URLCONF = "qifu.urls"
WSGI_APPLICATION = "qifu.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [NINJA_FOLDER / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "qifu.accounts.context_processors.staff",
                "qifu.web.context_processors.demo",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(config.database_url(), conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Static files ship inside the package and are served by WhiteNoise from the app folders;
# an operator who puts a web server in front sets QIFU_STATIC_ROOT and runs collectstatic.
if config.get("QIFU_STATIC_ROOT"):
    STATIC_ROOT = config.get("QIFU_STATIC_ROOT")
STATICFILES_DIRS = [NINJA_FOLDER / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

SESSION_ENGINE = "qifu.accounts.sessions"  # Django's database sessions, read with raw SQL
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 8 * 3600  # a working day
# Behind HTTPS (a deployment): cookies only over HTTPS, HSTS, and the proxy's word that the
# request came over HTTPS (QIFU_TRUSTED_PROXIES names the proxies whose headers are believed).
SESSION_COOKIE_SECURE = config.get_bool("QIFU_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = int(config.get("QIFU_HSTS_SECONDS", "0") or 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
SECURE_SSL_REDIRECT = config.get_bool("QIFU_SSL_REDIRECT", False)
if config.get("QIFU_TRUSTED_PROXIES"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = config.get_bool("QIFU_USE_X_FORWARDED_HOST", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

EMAIL_HOST = config.get("QIFU_SMTP_HOST", "127.0.0.1")
EMAIL_PORT = int(config.get("QIFU_SMTP_PORT", "25") or 25)
EMAIL_HOST_USER = config.get("QIFU_SMTP_USER", "") or ""
EMAIL_HOST_PASSWORD = config.get("QIFU_SMTP_PASSWORD", "") or ""
EMAIL_USE_TLS = config.get_bool("QIFU_SMTP_TLS", False)
DEFAULT_FROM_EMAIL = config.get("QIFU_EMAIL_FROM", "qifu@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": config.get("QIFU_LOG_LEVEL", "WARNING")},
}
