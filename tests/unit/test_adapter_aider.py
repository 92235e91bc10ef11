"""Aider adapter: argv, text parsing and judging, on output copied from aider-chat 0.86.2 runs.

The recorded runs had no ``COLUMNS`` set, so Aider wrapped its error lines at 80 columns; the
adapter sets ``COLUMNS=4000``, and both forms are tested.
"""

from __future__ import annotations

from pathlib import Path

from aipass_tui.core.models import RunStatus


def _lines(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


NO_MODEL_WAITING = (
    'Analytics have been permanently disabled.',
    '',
    'Update git name with: git config user.name "Your Name"',
    'Update git email with: git config user.email "you@example.com"',
    'You can skip this check with --no-gitignore',
    'Added .aider* to .gitignore',
    'No LLM model was specified and no API keys were provided.',
    'OpenRouter provides free and paid access to many LLMs.',
    '',
    'Please open this URL in your browser to connect Aider with OpenRouter:',
    '',
    'https://openrouter.ai/auth?callback_url=http://localhost:8484/callback/aider&code_challenge=Xv_nvrzwrizaSwXhrNYnIYZJl_feSC-mdp6jRFIOpGk&code_challenge_method=S256',
    '',
    'Waiting up to 5 minutes for you to finish in the browser...',
    'Use Control-C to interrupt.',
)

NO_MODEL_GAVE_UP = (
    'Analytics have been permanently disabled.',
    '',
    'Update git name with: git config user.name "Your Name"',
    'Update git email with: git config user.email "you@example.com"',
    'You can skip this check with --no-gitignore',
    'Added .aider* to .gitignore',
    'No LLM model was specified and no API keys were provided.',
    'OpenRouter provides free and paid access to many LLMs.',
    '',
    'Please open this URL in your browser to connect Aider with OpenRouter:',
    '',
    'https://openrouter.ai/auth?callback_url=http://localhost:8484/callback/aider&code_challenge=rt33_8X40vGlw5R_KRuxSC7uZRNRoEQtyB57PFlbLrQ&code_challenge_method=S256',
    '',
    'Waiting up to 5 minutes for you to finish in the browser...',
    'Use Control-C to interrupt.',
    'Authentication with OpenRouter failed.',
    'OpenRouter authentication did not complete successfully.',
    '',
    'https://aider.chat/docs/troubleshooting/models-and-keys.html',
)

OFFLINE_RETRYING = (
    'Analytics have been permanently disabled.',
    '',
    'Update git name with: git config user.name "Your Name"',
    'Update git email with: git config user.email "you@example.com"',
    'You can skip this check with --no-gitignore',
    'Added .aider* to .gitignore',
    'Using gpt-4o model with API key from environment.',
    'HTTPSConnectionPool(host=\'raw.githubusercontent.com\', port=443): Max retries exceeded with url: /BerriAI/litellm/main/model_prices_and_context_window.json (Caused by NameResolutionError("HTTPSConnection(host=\'raw.githubusercontent.com\', port=443): Failed to resolve \'raw.githubusercontent.com\' ([Errno -3] Temporary failure in name resolution)"))',
    'HTTPSConnectionPool(host=\'raw.githubusercontent.com\', port=443): Max retries exceeded with url: /BerriAI/litellm/main/model_prices_and_context_window.json (Caused by NameResolutionError("HTTPSConnection(host=\'raw.githubusercontent.com\', port=443): Failed to resolve \'raw.githubusercontent.com\' ([Errno -3] Temporary failure in name resolution)"))',
    'Aider v0.86.2',
    'Main model: gpt-4o with diff edit format',
    'Weak model: gpt-4o-mini',
    'Git repo: .git with 0 files',
    'Repo-map: using 4096 tokens, auto refresh',
    '',
    '',
    'https://aider.chat/HISTORY.html#release-notes',
    '',
    'litellm.InternalServerError: InternalServerError: OpenAIException - Connection ',
    'error.',
    "The API provider's servers are down or overloaded.",
    'Retrying in 0.2 seconds...',
    'litellm.InternalServerError: InternalServerError: OpenAIException - Connection ',
    'error.',
    "The API provider's servers are down or overloaded.",
    'Retrying in 0.5 seconds...',
    'litellm.InternalServerError: InternalServerError: OpenAIException - Connection ',
    'error.',
    "The API provider's servers are down or overloaded.",
    'Retrying in 1.0 seconds...',
    'litellm.InternalServerError: InternalServerError: OpenAIException - Connection ',
    'error.',
    "The API provider's servers are down or overloaded.",
    'Retrying in 2.0 seconds...',
    'litellm.InternalServerError: InternalServerError: OpenAIException - Connection ',
    'error.',
    "The API provider's servers are down or overloaded.",
    'Retrying in 4.0 seconds...',
    'litellm.InternalServerError: InternalServerError: OpenAIException - Connection ',
    'error.',
    "The API provider's servers are down or overloaded.",
    'Retrying in 8.0 seconds...',
    'litellm.InternalServerError: InternalServerError: OpenAIException - Connection ',
    'error.',
    "The API provider's servers are down or overloaded.",
    'Retrying in 16.0 seconds...',
    'litellm.InternalServerError: InternalServerError: OpenAIException - Connection ',
    'error.',
    "The API provider's servers are down or overloaded.",
    'Retrying in 32.0 seconds...',
)

AUTH_ERROR = (
    'Analytics have been permanently disabled.',
    '',
    'Update git name with: git config user.name "Your Name"',
    'Update git email with: git config user.email "you@example.com"',
    'You can skip this check with --no-gitignore',
    'Added .aider* to .gitignore',
    'HTTPSConnectionPool(host=\'raw.githubusercontent.com\', port=443): Max retries exceeded with url: /BerriAI/litellm/main/model_prices_and_context_window.json (Caused by NameResolutionError("HTTPSConnection(host=\'raw.githubusercontent.com\', port=443): Failed to resolve \'raw.githubusercontent.com\' ([Errno -3] Temporary failure in name resolution)"))',
    'HTTPSConnectionPool(host=\'raw.githubusercontent.com\', port=443): Max retries exceeded with url: /BerriAI/litellm/main/model_prices_and_context_window.json (Caused by NameResolutionError("HTTPSConnection(host=\'raw.githubusercontent.com\', port=443): Failed to resolve \'raw.githubusercontent.com\' ([Errno -3] Temporary failure in name resolution)"))',
    'Warning: gpt-4o expects these environment variables',
    '- OPENAI_API_KEY: Not set',
    'Warning: gpt-4o-mini expects these environment variables',
    '- OPENAI_API_KEY: Not set',
    'You can skip this check with --no-show-model-warnings',
    '',
    'https://aider.chat/docs/llms/warnings.html',
    '',
    'Aider v0.86.2',
    'Main model: gpt-4o with diff edit format',
    'Weak model: gpt-4o-mini',
    'Git repo: .git with 0 files',
    'Repo-map: using 4096 tokens, auto refresh',
    '',
    '',
    'https://aider.chat/HISTORY.html#release-notes',
    '',
    'litellm.AuthenticationError: AuthenticationError: OpenAIException - The api_key ',
    'client option must be set either by passing api_key to the client or by setting ',
    'the OPENAI_API_KEY environment variable',
    'The API provider is not able to authenticate you. Check your API key.',
    '',
)

UNKNOWN_OPTION_STDERR = (
    'usage: aider [-h] [--model MODEL] [--openai-api-key OPENAI_API_KEY]',
    '             [--anthropic-api-key ANTHROPIC_API_KEY]',
    '             [--openai-api-base OPENAI_API_BASE]',
)

BANNER = (
    "Aider v0.86.2",
    "Main model: gpt-4o with diff edit format",
    "Weak model: gpt-4o-mini",
    "Git repo: .git with 3 files",
    "Repo-map: using 4096 tokens, auto refresh",
    "",
)


# -- argv and environment -------------------------------------------------------------------------


def test_argv(kit, tmp_path: Path) -> None:
    adapter = kit.make_adapter("aider", binary="/opt/aider", model="gpt-4o", args=["--no-auto-commits"])
    argv = adapter.build_argv(kit.context("rename foo", tmp_path))
    assert argv == [
        "/opt/aider", "--message", "rename foo", "--yes-always", "--no-pretty", "--no-stream", "--no-fancy-input",
        "--no-check-update", "--no-show-release-notes", "--analytics-disable", "--no-gitignore",
        "--model", "gpt-4o", "--no-auto-commits",
    ]


def test_argv_prompt_starting_with_dash(kit, tmp_path: Path) -> None:
    argv = kit.make_adapter("aider").build_argv(kit.context("--drop everything", tmp_path))
    assert argv[1] == "--message=--drop everything"
    assert "--model" not in argv


def test_environment(kit, tmp_path: Path) -> None:
    env = kit.make_adapter("aider").extra_env(kit.context("x", tmp_path))
    assert env == {"COLUMNS": "4000", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}


# -- recorded failures -----------------------------------------------------------------------------


def test_auth_error_exit_0(kit) -> None:
    adapter = kit.make_adapter("aider", model="gpt-4o")
    stdout = _lines(*AUTH_ERROR)
    parsed = kit.parse(adapter, stdout)
    assert [e.data["error_kind"] for e in parsed.of("error")] == ["auth", "auth"]
    outcome = adapter.judge(kit.evidence(parsed, 0, stdout, repo_changed=False))
    assert outcome.status == RunStatus.FAILED
    assert outcome.message.startswith("aider could not authenticate with the model provider: check the provider's API key")
    assert "litellm.AuthenticationError" in outcome.message


def test_auth_error_unwrapped(kit) -> None:
    line = ("litellm.AuthenticationError: AuthenticationError: OpenAIException - The api_key client option must be set either "
            "by passing api_key to the client or by setting the OPENAI_API_KEY environment variable")
    parsed = kit.parse(kit.make_adapter("aider"), _lines(*BANNER, line))
    assert parsed.of("error")[0].text == line


def test_offline_retries_exit_0(kit) -> None:
    adapter = kit.make_adapter("aider")
    stdout = _lines(*OFFLINE_RETRYING)
    parsed = kit.parse(adapter, stdout)
    assert len(parsed.of("retry")) == 8
    assert parsed.of("retry")[0].data == {"retry_delay_ms": 200.0}
    assert set(e.data["error_kind"] for e in parsed.of("error")) == {"server"}
    assert parsed.summary.raw_lines == len([line for line in OFFLINE_RETRYING if line.strip()])
    outcome = adapter.judge(kit.evidence(parsed, 0, stdout, repo_changed=False))
    assert outcome.status == RunStatus.FAILED
    assert outcome.message.startswith("aider's model provider failed or could not be reached")


def test_offline_unwrapped_is_network(kit) -> None:
    adapter = kit.make_adapter("aider")
    stdout = _lines(*BANNER, "litellm.InternalServerError: InternalServerError: OpenAIException - Connection error.",
                    "The API provider's servers are down or overloaded.", "Retrying in 0.2 seconds...")
    parsed = kit.parse(adapter, stdout)
    assert [e.data["error_kind"] for e in parsed.of("error")] == ["network", "server"]
    outcome = adapter.judge(kit.evidence(parsed, 0, stdout))
    assert outcome.message.startswith("aider could not reach the model provider: check the network connection")


def test_no_model_waiting_for_login(kit) -> None:
    adapter = kit.make_adapter("aider")
    stdout = _lines(*NO_MODEL_WAITING)
    timed_out = kit.judge_output(adapter, stdout, -15, stop_requested="timeout")
    assert timed_out.status == RunStatus.TIMED_OUT
    assert "waiting for a browser login" in timed_out.message
    gave_up = kit.judge_output(adapter, _lines(*NO_MODEL_GAVE_UP), 1)
    assert gave_up.status == RunStatus.FAILED
    assert gave_up.message.startswith("aider has no model and no API key: set the agent's model (--model)")


def test_unknown_option(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("aider"), b"", 2, _lines(*UNKNOWN_OPTION_STDERR, "aider: error: unrecognized arguments: --bogus"))
    assert outcome.status == RunStatus.FAILED
    assert outcome.message == "aider rejected its command line: aider: error: unrecognized arguments: --bogus (check the agent's args)"


def test_rate_limit_and_quota(kit) -> None:
    adapter = kit.make_adapter("aider")
    rate = _lines(*BANNER, "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for gpt-4o",
                  "The API provider has rate limited you. Try again later or check your quotas.")
    assert kit.judge_output(adapter, rate, 0).message.startswith("aider was rate limited")
    quota = _lines(*BANNER, "litellm.RateLimitError: RateLimitError: OpenAIException - You exceeded your current quota, "
                            "please check your plan and billing details.")
    assert kit.judge_output(adapter, quota, 0).message.startswith("aider's model provider account cannot pay")


# -- success ------------------------------------------------------------------------------------


def test_success_from_repository_change(kit) -> None:
    adapter = kit.make_adapter("aider")
    stdout = _lines(*BANNER, "I renamed the function.", "Applied edit to src/app.py",
                    "Tokens: 2.1k sent, 1.0k cache write, 12k cache hit, 85 received. Cost: $0.0062 message, $0.0140 session.")
    parsed = kit.parse(adapter, stdout)
    usage = parsed.of("usage")[0]
    assert usage.data == {"input_tokens": 15100, "output_tokens": 85, "cost_usd": 0.0062}
    assert parsed.summary.cost_usd == 0.0062
    outcome = adapter.judge(kit.evidence(parsed, 0, stdout, repo_changed=True))
    assert outcome.status == RunStatus.SUCCEEDED
    assert outcome.message == "finished with changes to the repository"


def test_reply_without_change(kit) -> None:
    adapter = kit.make_adapter("aider")
    stdout = _lines(*BANNER, "The code already does that.")
    outcome = kit.judge_output(adapter, stdout, 0, repo_changed=False)
    assert outcome.status == RunStatus.SUCCEEDED
    assert outcome.message == "finished without changing the repository"


def test_change_after_transient_error(kit) -> None:
    adapter = kit.make_adapter("aider")
    stdout = _lines(*BANNER, "litellm.InternalServerError: InternalServerError: OpenAIException - Connection error.",
                    "Retrying in 0.2 seconds...", "Applied edit to a.py")
    outcome = kit.judge_output(adapter, stdout, 0, repo_changed=True)
    assert outcome.status == RunStatus.SUCCEEDED
    assert "after aider reported: litellm.InternalServerError" in outcome.message


def test_no_output_and_bad_exit(kit) -> None:
    adapter = kit.make_adapter("aider")
    assert kit.judge_output(adapter, b"", 0).message == "aider exited without printing a reply"
    crashed = kit.judge_output(adapter, _lines(*BANNER), 1, _lines("Traceback (most recent call last):", "KeyError: 'x'"))
    assert crashed.status == RunStatus.FAILED
    assert crashed.message == "aider exited with code 1: KeyError: 'x'"
    assert kit.judge_output(adapter, _lines(*BANNER), None).status == RunStatus.LOST


def test_timeout_while_retrying(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("aider"), _lines(*OFFLINE_RETRYING), -15, stop_requested="timeout")
    assert outcome.status == RunStatus.TIMED_OUT
    assert outcome.message.endswith("while aider was retrying the model provider: check the network connection")
