"""Every suite loads the same problems whichever file declares it: for each bundled suite and each suite whose
public data is present, the problem ids, prompts, tests, the public tests feedback may show, each problem's
scorer and the run's content checksum match fingerprints taken on the code before benchmarks declared
themselves (``SuiteSpec``; issue 27)."""

from __future__ import annotations

import hashlib
import json

import pytest

from conftest import needs_shared_data
from harness.execution.jobs import scorer_name
from harness.feedback.checks import public_tests
from harness.runs.folder.fingerprints import run_inputs
from harness.suites.registry import BUILT_IN, known_suites, resolve_suite, suite_spec

DATA = {  # suite: its public data file under ../shared/data (None: bundled)
    "core": None,
    "mtpb": "mtpb.jsonl",
    "humaneval": "HumanEval.jsonl.gz",
    "humanevalplus": "HumanEvalPlus-v0.1.10.jsonl.gz",
    "mbpp": "mbpp.jsonl",
    "mbpp-bigcode": "mbpp.jsonl",
    "mbpp-3shot": "mbpp.jsonl",
    "mbpp-sanitized": "sanitized-mbpp.json",
    "humaneval-infilling-single-line": "infilling/HumanEval-SingleLineInfilling.jsonl.gz",
    "humaneval-infilling-multi-line": "infilling/HumanEval-MultiLineInfilling.jsonl.gz",
    "humaneval-infilling-random-span": "infilling/HumanEval-RandomSpanInfilling.jsonl.gz",
    "humaneval-infilling-random-span-light": "infilling/HumanEval-RandomSpanInfillingLight.jsonl.gz",
}
# Taken on main at 105efa8, before the change (the same function over the same data).
FINGERPRINTS: dict[str, dict[str, str]] = {
    "core": {
        "ids": "012fb400802c01af",
        "prompts": "54079667d46f9d5b",
        "tests": "b9c57130eaa1151c",
        "public_tests": "046eb4fa28438f37",
        "scorers": "95e46c7308973044",
        "descriptions": "af0c1c201d00a430",
        "suite_sha256": "38571bf76fa1a4c101026604c06351d57aeb4803c1813e556fa22a2f3bfc8bfb",
        "suite": "a97ec9505a65354d",
    },
    "mtpb": {
        "ids": "41d822f420f1556f",
        "prompts": "af80f310ce125abf",
        "tests": "ab29df18b54a51ca",
        "public_tests": "65faede3b4200a47",
        "scorers": "e738b9b8c74f0a4f",
        "descriptions": "282d2d59462daf0a",
        "suite_sha256": "dce086a16d29f323a1621a075f3f81968b01dc3234bc109735d164a65f0ae4be",
        "suite": "4c62b66b248b1dd0",
    },
    "humaneval": {
        "ids": "f3859741c22c187b",
        "prompts": "2f949d094888c048",
        "tests": "5e70aee5b2ffbd7b",
        "public_tests": "f7d54227c3f5dbe0",
        "scorers": "00018ee99e744637",
        "descriptions": "2b5385243f2a5b75",
        "suite_sha256": "f2f14cdcc5f333f5b5f6b75014adc003b8d29d975eb815a1ca6958a192006d1f",
        "suite": "dd5632a7f9013c59",
    },
    "humanevalplus": {
        "ids": "f3859741c22c187b",
        "prompts": "70153ff597235967",
        "tests": "d92f045272da178e",
        "public_tests": "f7d54227c3f5dbe0",
        "scorers": "791e460df912bf0b",
        "descriptions": "2b5385243f2a5b75",
        "suite_sha256": "d1f69a4b5d1d83e591fa2b851ddbaf242f1309c94bbe8ecc7175931f33a221b1",
        "suite": "33c4a2355a254e53",
    },
    "mbpp": {
        "ids": "5f0cb9b204025fa1",
        "prompts": "7152f39d8b51e51d",
        "tests": "fe865b72bc9bf46a",
        "public_tests": "3e98bb7bc9cfb4f1",
        "scorers": "78e4ed649bbc9343",
        "descriptions": "ed3dd75b6e9ea2f5",
        "suite_sha256": "4d38020eb043364bdfff713c5a01053e15f336670017aaa4d3a6470877507f3e",
        "suite": "ac22f0a62eec5064",
    },
    "mbpp-bigcode": {
        "ids": "5f0cb9b204025fa1",
        "prompts": "4dbd2a708d5e67e9",
        "tests": "fe865b72bc9bf46a",
        "public_tests": "3e98bb7bc9cfb4f1",
        "scorers": "78e4ed649bbc9343",
        "descriptions": "ed3dd75b6e9ea2f5",
        "suite_sha256": "709096e9ccafcf919a9d8f8c221623f9a82bb70e574aaca23c378d3a97a82cea",
        "suite": "4ad93c75f387b0d4",
    },
    "mbpp-3shot": {
        "ids": "5f0cb9b204025fa1",
        "prompts": "d25a445095ae6515",
        "tests": "fe865b72bc9bf46a",
        "public_tests": "3e98bb7bc9cfb4f1",
        "scorers": "78e4ed649bbc9343",
        "descriptions": "ed3dd75b6e9ea2f5",
        "suite_sha256": "0a596354af05a5428c789601037bed48595c50430f44baf77eded1270830a5ef",
        "suite": "1e3d90cbfb04594d",
    },
    "mbpp-sanitized": {
        "ids": "568aaace51526830",
        "prompts": "1cbf85cf873b43ab",
        "tests": "801544c5dea9e767",
        "public_tests": "fb8ea620cf811cc6",
        "scorers": "99a3cad7ee107ae1",
        "descriptions": "bd8db731f06a767d",
        "suite_sha256": "9476a0c911b135d9e765fe9c40dccafef91fab82d86d6c54613216342e6e87b0",
        "suite": "9b7d998185ac2219",
    },
    "humaneval-infilling-single-line": {
        "ids": "774dd70d037f614f",
        "prompts": "08c0880bf5a898c8",
        "tests": "14c434585f39c7da",
        "public_tests": "dfb13ece0c173320",
        "scorers": "f2eeb55c6a82ad50",
        "descriptions": "db848b0d6dfeba79",
        "suite_sha256": "9f808b814903012b3e8d56a220f3e29213d33876a90f71404aac744503fc2dee",
        "suite": "f82233c6cd23948a",
    },
    "humaneval-infilling-multi-line": {
        "ids": "f7e8973822ad2aba",
        "prompts": "699e6000f3bf485d",
        "tests": "bfa7b15ad5c527b6",
        "public_tests": "24eeb07ad88e7355",
        "scorers": "cd4cb301b0473808",
        "descriptions": "6b53ebb1892908a2",
        "suite_sha256": "fddec464d3e60abe57ed86871bfcdafbbeef32f378f909ff823b90fc215b81fc",
        "suite": "5d22a31cb045c162",
    },
    "humaneval-infilling-random-span": {
        "ids": "142b0e6ced7783e8",
        "prompts": "d8c0017405cf24d0",
        "tests": "1671bd4f7e1831a1",
        "public_tests": "1aa096f42853d771",
        "scorers": "3c407d2925132962",
        "descriptions": "e34cbc9ad98efb9f",
        "suite_sha256": "f55114097450522e638bf0d700bb9d4c466a9d4bfdb24ec72142332da7081532",
        "suite": "17bb14d7bb844a91",
    },
    "humaneval-infilling-random-span-light": {
        "ids": "acd4566f2f39a77f",
        "prompts": "beabb9bca058d641",
        "tests": "cdb778aee361bf7a",
        "public_tests": "03c05d52ee8d5533",
        "scorers": "00018ee99e744637",
        "descriptions": "2b5385243f2a5b75",
        "suite_sha256": "cb969cf259b00ba34dfb906c25098ad7020959ff6ddcdb64e52af528b7cce049",
        "suite": "d918a5a2570b3473",
    },
}


def _sha(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode("utf-8")).hexdigest()[:16]


def fingerprint(name: str, data: str | None) -> dict[str, str]:
    suite = resolve_suite(name, data)
    problems = list(suite.problems)
    return {
        "ids": _sha([p.id for p in problems]),
        "prompts": _sha([[p.prompt, [t.prompt for t in p.turns], p.suffix] for p in problems]),
        "tests": _sha([[p.test, [[t.inputs, t.expected] for t in p.tests]] for p in problems]),
        "public_tests": _sha([list(public_tests(p)) for p in problems]),
        "scorers": _sha([scorer_name(p) for p in problems]),
        "descriptions": _sha([p.description for p in problems]),
        "suite_sha256": run_inputs(suite, problems)["suite_sha256"] or "",
        "suite": _sha([suite.name, suite.scorer, suite.description, suite.program_prefix, list(suite.preload),
                       list(suite.excluded_if_defective)]),
    }


def test_every_built_in_suite_is_fingerprinted_and_declared_under_its_name():
    assert list(known_suites()) == list(DATA)
    assert [suite_spec(name).name for name in BUILT_IN] == list(BUILT_IN)


@pytest.mark.parametrize("name", list(DATA))
def test_suite_loads_the_same_problems(name):
    data = DATA[name]
    path = str(needs_shared_data(data)) if data else None
    assert fingerprint(name, path) == FINGERPRINTS[name]
