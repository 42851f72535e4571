"""Templates: routes that render through both doors (inheritance, includes,
loops, filters, auto-escaping, globals, the CSRF helpers, errors as 500
problems), MiniJinjaEngine on its own (contexts, objects, Markup, errors
with name and line, strict mode, the cache, path escapes), the app methods'
contracts, and TemplateEngine's exact documented output."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import cello
from cello import App, MiniJinjaEngine, TemplateEngine
from cello.templates import (
    Markup,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from tests.live import door_client

TEMPLATES = Path(__file__).parent / "apps" / "templates"


@pytest.fixture(scope="module", params=["native", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from door_client(request.param, "tests.apps.templates_app:app", "--env", "production")


# -- through the doors ---------------------------------------------------------


def test_a_page_extends_includes_loops_and_filters(client):
    response = client.get("/page", params={"name": "Ada"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == (
        "<!doctype html>\n"
        "<title>Hello Ada | Cello Shop</title>\n"
        "<body><h1>Hello Ada</h1>\n"
        '<ul><li class="odd">1. Red Kite (12.5)</li>'
        '<li class="even">2. Blue Hat (3.33)</li></ul>\n'
        "<p>2 items, A, B</p>\n"
        "<em>new</em>\n"
        "<footer>2026 nobody</footer></body>"
    )


def test_html_templates_escape_what_they_print(client):
    body = client.get("/page", params={"name": "<script>alert('x')</script>"}).text
    assert "<script>" not in body
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt;" in body
    # Markup passed in the context is not escaped.
    assert "<em>new</em>" in body


def test_text_templates_do_not_escape(client):
    response = client.get("/note", params={"name": "<b>Bo</b>", "count": "2"})
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "Dear <b>Bo</b>, your order of 2 items ships today."
    assert client.get("/note", params={"count": "1"}).text == (
        "Dear world, your order of 1 item ships today."
    )


def test_render_string_escapes_with_auto_escape_on(client):
    assert client.get("/inline", params={"word": "<i>&</i>"}).text == (
        "<b>&lt;i&gt;&amp;&lt;&#x2f;i&gt;</b>"
    )


def test_async_handlers_render_with_keyword_values(client):
    response = client.get("/async-page")
    assert response.status_code == 201
    assert "<footer>2026 Ada</footer>" in response.text


def test_csrf_helpers_are_template_globals(client):
    client.cookies.clear()
    response = client.get("/form", params={"q": '"quoted"'})
    token = response.cookies["_csrf"]
    assert f'<input type="hidden" name="_csrf" value="{token}">' in response.text
    assert f'<meta name="csrf-token" content="{token}">' in response.text
    assert 'value="&quot;quoted&quot;"' in response.text


@pytest.mark.parametrize("path", ["/broken", "/missing"])
def test_template_errors_are_500_problems_without_details(client, path):
    response = client.get(path)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"] == "The server encountered an unexpected error."
    assert "template" not in response.text


# -- MiniJinjaEngine -----------------------------------------------------------


@pytest.fixture
def engine() -> MiniJinjaEngine:
    return MiniJinjaEngine(TEMPLATES)


def test_engine_properties_and_defaults(tmp_path):
    engine = MiniJinjaEngine()
    assert engine.template_dir == "templates"
    assert engine.auto_escape is True
    assert engine.strict_undefined is False
    other = MiniJinjaEngine(str(tmp_path), auto_escape=False, strict_undefined=True)
    assert other.template_dir == str(tmp_path)
    assert other.auto_escape is False
    assert "auto_escape=False" in repr(other)


def test_context_values_of_every_plain_type(engine):
    source = (
        "{{ s }}|{{ i }}|{{ big }}|{{ f }}|{{ t }}|{{ n }}|{{ l|join(',') }}|{{ tup[1] }}|"
        "{{ d.k }}|{{ d['k'] }}|{{ nested.a[0].b }}|{{ st|length }}|{{ b|length }}"
    )
    context = {
        "s": "text",
        "i": 42,
        "big": 2**70,
        "f": 1.5,
        "t": True,
        "n": None,
        "l": [1, 2],
        "tup": ("x", "y"),
        "d": {"k": "v"},
        "nested": {"a": [{"b": "deep"}]},
        "st": {1, 2, 3},
        "b": b"four",
    }
    assert engine.render_string(source, context) == (
        "text|42|1180591620717411303424|1.5|True|None|1,2|y|v|v|deep|3|4"
    )


def test_dicts_keep_their_order(engine):
    source = "{% for k, v in d|items %}{{ k }}={{ v }} {% endfor %}"
    assert engine.render_string(source, {"d": {"z": 1, "a": 2, "m": 3}}) == "z=1 a=2 m=3 "


def test_objects_are_read_through_attributes_and_methods(engine):
    @dataclasses.dataclass
    class User:
        name: str
        _secret: str = "hidden"

        def greet(self, other: str, punctuation: str = "!") -> str:
            return f"{self.name} greets {other}{punctuation}"

        def __str__(self) -> str:
            return f"User<{self.name}>"

    context = {"user": User("<Ada>")}
    assert engine.render_string("{{ user.name }}", context) == "&lt;Ada&gt;"
    assert engine.render_string("{{ user.greet('Bo', punctuation='?') }}", context) == (
        "&lt;Ada&gt; greets Bo?"
    )
    assert engine.render_string("{{ user }}", context) == "User&lt;&lt;Ada&gt;&gt;"
    # Private and dunder attributes are out of reach of templates.
    assert engine.render_string("[{{ user._secret }}{{ user.__class__ }}]", context) == "[]"
    with pytest.raises(TemplateError):
        engine.render_string("{{ user.__init__() }}", context)


def test_markup_and_html_objects_are_not_escaped(engine):
    class Widget:
        def __html__(self) -> str:
            return "<widget>"

    context = {"m": Markup("<b>bold</b>"), "w": Widget(), "plain": "<b>"}
    assert engine.render_string("{{ m }} {{ w }} {{ plain }}", context) == (
        "<b>bold</b> <widget> &lt;b&gt;"
    )
    assert Markup.escape("<x>") == "&lt;x&gt;"
    assert Markup.escape(Markup("<x>")) == "<x>"


def test_globals_and_callables(engine):
    engine.add_global("site", "Shop")
    engine.add_globals({"shout": lambda text: text.upper() + "!", "limit": 3})
    assert engine.render_string("{{ site }} {{ shout('hi') }} {{ limit + 1 }}") == "Shop HI! 4"
    # The context wins over a global of the same name.
    assert engine.render_string("{{ site }}", {"site": "Mine"}) == "Mine"
    with pytest.raises(TypeError, match="add_globals"):
        engine.add_globals(["not", "a", "dict"])


def test_auto_escape_off(tmp_path):
    (tmp_path / "p.html").write_text("<p>{{ x }}</p>")
    engine = MiniJinjaEngine(tmp_path, auto_escape=False)
    assert engine.render("p.html", {"x": "<i>"}) == "<p><i></p>"
    assert engine.render_string("{{ x }}", x="<i>") == "<i>"


def test_html_xml_and_htm_escape_but_other_extensions_do_not(tmp_path):
    for name in ("a.html", "a.htm", "a.xml", "a.HTML", "a.html.j2", "a.txt", "a.md", "a.csv"):
        (tmp_path / name).write_text("{{ x }}")
    engine = MiniJinjaEngine(tmp_path)
    for name in ("a.html", "a.htm", "a.xml", "a.HTML", "a.html.j2"):
        assert engine.render(name, {"x": "<&>"}) == "&lt;&amp;&gt;", name
    for name in ("a.txt", "a.md", "a.csv"):
        assert engine.render(name, {"x": "<&>"}) == "<&>", name


def test_a_missing_template_names_itself(engine):
    with pytest.raises(TemplateNotFound) as caught:
        engine.render("nope.html")
    error = caught.value
    assert isinstance(error, LookupError)
    assert error.name == "nope.html"
    assert str(error) == 'template "nope.html" does not exist'


@pytest.mark.parametrize("name", ["../templates_app.py", "/etc/passwd", "partials/../../x.py"])
def test_names_cannot_leave_the_template_directory(engine, name):
    with pytest.raises(TemplateNotFound):
        engine.render(name)


def test_syntax_errors_give_the_template_and_line(engine):
    with pytest.raises(TemplateSyntaxError) as caught:
        engine.render("broken.html")
    error = caught.value
    assert (error.name, error.line) == ("broken.html", 2)
    assert str(error) == "syntax error: unexpected end of block (in broken.html, line 2)"
    assert error.message == str(error)
    with pytest.raises(TemplateSyntaxError) as caught:
        engine.render_string("ok\nok\n{{ x + }}")
    assert (caught.value.name, caught.value.line) == ("<string>", 3)


def test_an_error_in_an_included_template_names_that_template(tmp_path):
    (tmp_path / "outer.txt").write_text("a\n{% include 'inner.txt' %}")
    (tmp_path / "inner.txt").write_text("x\ny\n{{ nope() }}")
    with pytest.raises(TemplateError) as caught:
        MiniJinjaEngine(tmp_path).render("outer.txt")
    assert (caught.value.name, caught.value.line) == ("inner.txt", 3)


def test_undefined_values_are_empty_unless_strict(tmp_path):
    lenient = MiniJinjaEngine(tmp_path)
    assert lenient.render_string("[{{ nope }}]") == "[]"
    # As in Jinja2: printing an undefined value is fine, reaching into it is not.
    with pytest.raises(UndefinedError):
        lenient.render_string("{{ nope.deeper }}")
    assert lenient.render_string("{% if nope %}yes{% else %}no{% endif %}") == "no"
    strict = MiniJinjaEngine(tmp_path, strict_undefined=True)
    with pytest.raises(UndefinedError) as caught:
        strict.render_string("line\n{{ nope }}")
    assert caught.value.line == 2
    assert strict.render_string("{{ there }}", {"there": 1}) == "1"


def test_a_python_exception_inside_a_template_is_the_cause(engine):
    def explode() -> None:
        raise KeyError("inner")

    with pytest.raises(TemplateError) as caught:
        engine.render_string("{{ explode() }}", {"explode": explode})
    assert isinstance(caught.value.__cause__, KeyError)
    assert "KeyError" in str(caught.value)


def test_bad_contexts_are_refused(engine):
    with pytest.raises(TypeError, match="the template context must be a dict, not list"):
        engine.render_string("x", ["a"])  # type: ignore[arg-type]
    looped: list = []
    looped.append(looped)
    with pytest.raises(ValueError, match="nest deeper than 64 levels"):
        engine.render_string("x", {"l": looped})


def test_clear_cache_reads_edited_files_again(tmp_path):
    page = tmp_path / "page.txt"
    page.write_text("one")
    engine = MiniJinjaEngine(tmp_path)
    assert engine.render("page.txt") == "one"
    page.write_text("two")
    assert engine.render("page.txt") == "one"
    engine.clear_cache()
    assert engine.render("page.txt") == "two"


def test_threads_render_at_the_same_time(engine):
    results: list[str] = []
    context = {"name": "t", "items": [{"title": "x", "price": 1}] * 50, "tags": []}

    def work() -> None:
        for _ in range(20):
            results.append(engine.render("page.html", context))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 80
    assert len(set(results)) == 1


# -- the App methods -----------------------------------------------------------


def test_enable_templates_twice_is_an_error():
    app = App()
    engine = app.enable_templates(TEMPLATES)
    assert isinstance(engine, MiniJinjaEngine)
    assert app.templates is engine
    with pytest.raises(RuntimeError, match="already enabled"):
        app.enable_templates(TEMPLATES)


@pytest.mark.parametrize("call", ["render", "render_string", "template_response"])
def test_rendering_before_enable_templates_is_an_error(call):
    with pytest.raises(RuntimeError, match=r"call app.enable_templates\(\) first"):
        getattr(App(), call)("x")


def test_enable_templates_options(tmp_path):
    (tmp_path / "p.html").write_text("{{ x }} {{ site }}")
    app = App()
    engine = app.enable_templates(
        str(tmp_path), auto_escape=False, globals={"site": "S"}, strict_undefined=True
    )
    assert engine.auto_escape is False
    assert app.render("p.html", {"x": "<i>"}) == "<i> S"
    assert app.render_string("{{ y }}", y=2) == "2"
    with pytest.raises(UndefinedError):
        app.render_string("{{ missing }}")


def test_template_response_sets_status_and_headers(tmp_path):
    (tmp_path / "p.html").write_text("<p>{{ x }}</p>")
    app = App()
    app.enable_templates(tmp_path)
    response = app.template_response("p.html", {"x": 1}, status=404, headers={"X-A": "b"})
    assert response.status == 404
    assert response.headers["x-a"] == "b"
    assert response.body() == b"<p>1</p>"


def test_exported_from_cello():
    assert cello.MiniJinjaEngine is MiniJinjaEngine
    assert cello.TemplateEngine is TemplateEngine
    assert {"MiniJinjaEngine", "TemplateEngine"} <= set(cello.__all__)


# -- TemplateEngine --------------------------------------------------------------


def test_template_engine_documented_output():
    engine = TemplateEngine(TEMPLATES)
    context = {
        "name": "<Ada>",
        "count": 3,
        "ok": False,
        "nothing": None,
        "data": {"a": [1, 2.5, True, None], "b": "x"},
    }
    assert engine.render("simple.txt", context) == (
        'Hello <Ada>! 3 false  {"a":[1,2.5,true,null],"b":"x"} {{ missing }}\n'
    )
    assert engine.render_string("{{a}}{{ a }}{{  a  }}", {"a": 1.25}) == "1.251.251.25"
    assert engine.render_string("{{ yes }}/{{ list }}", yes=True, list=["q"]) == 'true/["q"]'
    # Only names: expressions and blocks are left alone.
    assert engine.render_string("{{ a.b }} {% if a %}", {"a": 1}) == "{{ a.b }} {% if a %}"
    assert engine.template_dir == str(TEMPLATES)


def test_template_engine_cache_and_errors(tmp_path):
    page = tmp_path / "p.txt"
    page.write_text("{{ v }}")
    engine = TemplateEngine(tmp_path)
    assert engine.render("p.txt", {"v": 1}) == "1"
    page.write_text("changed {{ v }}")
    assert engine.render("p.txt", {"v": 1}) == "1"
    engine.clear_cache()
    assert engine.render("p.txt", {"v": 1}) == "changed 1"
    for name in ("missing.txt", "../p.txt", "/etc/passwd", ""):
        with pytest.raises(TemplateNotFound):
            engine.render(name)
