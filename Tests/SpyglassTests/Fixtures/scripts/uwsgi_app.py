"""A WSGI application for Debian's uWSGI (the deployment tests): each request spends its time in
hot(), so a worker under load is in Python under uWSGI's own C frames."""


def hot():
    total = 0
    for number in range(200000):
        total += number  # UWSGI-HOT
    return total


def application(environ, start_response):
    hot()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
