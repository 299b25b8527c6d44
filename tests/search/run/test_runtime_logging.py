"""Engine errors reach the terminal as one line, without the engine's traceback."""

import io
import logging

from search.run.runtime import OneLineErrors


def test_an_engine_error_keeps_its_message_and_loses_its_traceback():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test.one_line_errors")
    logger.propagate = False
    logger.addHandler(handler)
    logger.addFilter(OneLineErrors())
    try:
        raise FileNotFoundError("Failed to open local file '/tmp/x.json'\nDetail: errno 2")
    except FileNotFoundError:
        logger.error("Saving experiment state to %s failed with exception: ", "runs",
                     exc_info=True, stack_info=True)  # ray.tune.tune logs its stack too
    logger.warning("plain %s", "warning")
    text = stream.getvalue()
    assert "Traceback" not in text and "Detail" not in text  # the first line only
    assert "Stack (most recent call last)" not in text
    assert ("ERROR Saving experiment state to runs failed with exception: FileNotFoundError: "
            "Failed to open local file '/tmp/x.json'") in text
    assert "WARNING plain warning" in text
