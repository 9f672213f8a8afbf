"""pytest plugin loaded by scripts/milvus_suite.sh (`-p milvus_suite_plugin`).

Milvus's python_client suite checks every API answer in `check/func_check.py`
(`ResponseChecker`). Its own assertion messages lose what matters for a compatibility
report: `assert_exception` prints the expected error *code* where it means the expected
message, and `assert_succ` says only "expect True, but got False" when a call that should
succeed raised. For every failed test phase this plugin finds the innermost
`ResponseChecker` frame of the traceback and records, as junit `<properties>` of the
test case:

  api       the checked API (`create_collection`, `search`, ...)
  check     the check task (`err_res`, `check_search_results`, ..., `succ` for none)
  expected  for `err_res`: `code=<code> message=<message>` the suite expected;
            otherwise the check items (shortened)
  actual    the server's answer: `error: code=<code> message=<message>`, or
            `success: <result>` (shortened)
  raised    the exception being handled when the check failed, in the same form: an
            answer that succeeded and then raised while the suite consumed it (a
            search iterator's next page), which the check met with a KeyError
  phase     setup / call / teardown

It also registers the suite's check modules for pytest's assertion rewriting, so their
plain `assert a == b` lines report both values.
"""

import pytest

pytest.register_assert_rewrite("check.func_check", "check.param_check")

_MAX = 600


def _short(value, limit=_MAX):
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_answer(response, succeeded):
    if not succeeded or type(response).__name__ == "Error":
        code = getattr(response, "code", None)
        message = getattr(response, "message", None)
        if message is None:
            message = str(response)
        return f"error: code={code} message={_short(message)}"
    return f"success: {_short(response)}"


def _checker_frame(tb):
    found = None
    while tb is not None:
        frame = tb.tb_frame
        if type(frame.f_locals.get("self")).__name__ == "ResponseChecker":
            found = frame
        tb = tb.tb_next
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None or not report.failed:
        return
    props = [("phase", call.when)]
    frame = _checker_frame(call.excinfo.tb)
    if frame is not None:
        checker = frame.f_locals["self"]
        props.append(("api", str(checker.func_name)))
        task = checker.check_task
        props.append(("check", "succ" if task is None else str(task)))
        if frame.f_code.co_name == "assert_exception":
            items = frame.f_locals.get("error_dict") or {}
            props.append(
                (
                    "expected",
                    f"error: code={items.get('err_code')} message={_short(str(items.get('err_msg')))}",
                )
            )
        elif task is None:
            props.append(("expected", "success"))
        else:
            props.append(("expected", _short(checker.check_items)))
        props.append(("actual", _describe_answer(checker.response, checker.succ)))
        context = call.excinfo.value.__context__
        if isinstance(context, Exception) and context is not checker.response:
            props.append(("raised", _describe_answer(context, False)))
    # junitxml writes a test case's properties from its teardown report, which copies
    # item.user_properties; a failing teardown's own report is already made.
    item.user_properties.extend(props)
    if call.when == "teardown":
        report.user_properties.extend(props)
