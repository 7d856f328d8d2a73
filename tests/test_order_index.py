"""OrderIndex (order id -> pool slot hash map) against a dict."""

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from engine.core.order_index import OrderIndex


def test_grows_and_finds_sequential_ids():
    index = OrderIndex()
    for key in range(1, 50_001):
        index.put(key, key % 1000)
    assert len(index) == 50_000
    assert all(index.get(key) == key % 1000 for key in range(1, 50_001))
    assert index.get(50_001) == -1
    for key in range(1, 50_001, 2):
        index.discard(key)
    assert len(index) == 25_000
    assert all(index.get(key) == (-1 if key % 2 else key % 1000) for key in range(1, 50_001))


def test_rejects_reserved_and_duplicate_keys():
    index = OrderIndex()
    index.put(7, 1)
    try:
        index.put(7, 2)
    except KeyError:
        pass
    else:
        raise AssertionError("duplicate key accepted")
    try:
        index.put(0, 1)
    except ValueError:
        pass
    else:
        raise AssertionError("key 0 accepted")
    assert index.get(7) == 1


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 5000)), max_size=400))
@settings(max_examples=300, deadline=None)
def test_matches_a_dict(ops):
    index, model = OrderIndex(), {}
    for insert, key in ops:
        if insert and key not in model:
            index.put(key, key * 3 % 1_000_003)
            model[key] = key * 3 % 1_000_003
        elif not insert:
            index.discard(key)
            model.pop(key, None)
    assert len(index) == len(model)
    for key in range(1, 5001):
        assert index.get(key) == model.get(key, -1)


class IndexMachine(RuleBasedStateMachine):
    """Sequential ids inserted, random removals: the engine's access pattern."""

    def __init__(self):
        super().__init__()
        self.index = OrderIndex()
        self.model = {}
        self.next_id = 1

    @rule(n=st.integers(1, 40))
    def insert_next(self, n):
        for _ in range(n):
            self.index.put(self.next_id, self.next_id & 0xFFFF)
            self.model[self.next_id] = self.next_id & 0xFFFF
            self.next_id += 1

    @rule(data=st.data())
    def remove_some(self, data):
        if self.model:
            key = data.draw(st.sampled_from(sorted(self.model)))
            self.index.discard(key)
            del self.model[key]

    @rule(key=st.integers(-5, 3000))
    def lookup(self, key):
        assert self.index.get(key) == self.model.get(key, -1)

    @invariant()
    def same_size(self):
        assert len(self.index) == len(self.model)


TestIndexMachine = IndexMachine.TestCase
TestIndexMachine.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
