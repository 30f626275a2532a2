import pytest
from inventory import Inventory, OutOfStock


@pytest.fixture
def inventory() -> Inventory:
    stock = Inventory()
    stock.add("apple", 3)
    stock.add("pear")
    return stock


def test_add_counts_items(inventory: Inventory) -> None:
    assert inventory.count("apple") == 3
    assert inventory.count("pear") == 1


def test_take_reduces_the_count(inventory: Inventory) -> None:
    inventory.take("apple", 2)
    assert inventory.count("apple") == 1


def test_taking_too_much_is_refused(inventory: Inventory) -> None:
    with pytest.raises(OutOfStock, match="only 1 pear left"):
        inventory.take("pear", 2)


@pytest.mark.parametrize("count", [0, -1])
def test_adding_nothing_is_an_error(inventory: Inventory, count: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        inventory.add("plum", count)


def test_total_sums_every_item(inventory: Inventory) -> None:
    assert inventory.total() == 4
