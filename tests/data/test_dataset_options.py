"""Dataset options are checked against the type of their default before the loader runs:
one ValueError naming the dataset, the option, what it takes and what it got."""

import pytest

from signalprop.data import load_dataset


@pytest.mark.parametrize("name,options,msg", [
    ("digits", {"as_image": "yes"}, "dataset 'digits': option as_image must be true or false, got 'yes'"),
    ("iris", {"seed": -1}, "dataset 'iris': option seed must be an integer >= 0, got -1"),
    ("iris", {"seed": 1.5}, "dataset 'iris': option seed must be an integer, got 1.5"),
    ("iris", {"seed": float("nan")}, "dataset 'iris': option seed must be an integer, got nan"),
    ("wine", {"test_fraction": "0.2"}, "dataset 'wine': option test_fraction must be a number, got '0.2'"),
    ("gaussian", {"input_shape": 8}, r"dataset 'gaussian': option input_shape must be a list of integers such as \[3, 8, 8\], got 8"),
    ("gaussian", {"input_shape": "3,8,8"}, "option input_shape must be a list of integers"),
    ("gaussian", {"num_train": "100"}, "dataset 'gaussian': option num_train must be an integer, got '100'"),
    ("gaussian", {"inputshape": [3]}, r"dataset 'gaussian' has no option 'inputshape' \(did you mean input_shape\?\)"),
    ("cifar10", {"root": 3}, r"dataset 'cifar10': option root must be a folder \(a path\), got 3"),
    (3, {}, "dataset must be a name, one of breast_cancer, cifar10, count, digits, gaussian, iris, mnist1d, wine; got 3"),
])
def test_wrong_option_types_are_named(name, options, msg):
    with pytest.raises(ValueError, match=msg):
        load_dataset(name, **options)


def test_integral_floats_and_tuples_are_what_they_spell():
    d = load_dataset("gaussian", input_shape=[2, 3], num_train=1e2, num_test=8.0)
    assert d.input_shape == (2, 3) and len(d.train) == 100 and len(d.test) == 8
