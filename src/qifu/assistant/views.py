from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie
def chat(request):
    """The enterprise portal's chat panel (public: filers ask before they sign in)."""
    return render(request, "assistant/chat.html")
