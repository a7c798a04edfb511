"""Gram contribution of any other module through torch.func: per-example gradients of its
parameters are vector-Jacobian products of the module alone, vmapped over examples,

    grad_p l_i = vjp_p[ module(p, inputs_i) ](dL/d output_i),

re-running only this module (batch of one per example) with the inputs and output
gradients recorded in the single batched forward and backward.

Batch axes: inputs are split on axis 0, or axis 1 for torch.nn modules whose
``batch_first`` is False (``nn.MultiheadAttention``, RNNs, Transformer layers); tensors
without that axis of size B are shared by all examples (masks, positions). Output batch
axes are found by calling the module on the first example alone. Randomness inside the
module (dropout in train mode) cannot be replayed and is refused.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch.func import functional_call
from torch.utils import _pytree as pytree

from signalprop.measure.gradients._gram.base import Handler, add_gram


class FuncLayer(Handler):
    strategy = "torch.func"

    def store_inputs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        detach = lambda t: t.detach() if isinstance(t, Tensor) else t  # noqa: E731
        return pytree.tree_map(detach, (args, kwargs))

    def wants(self, leaf: int) -> bool:
        return True

    def _in_dim(self) -> int:
        builtin = type(self.module).__module__.startswith("torch.nn")
        return 1 if builtin and getattr(self.module, "batch_first", True) is False else 0

    def _per_example(self) -> dict[str, Tensor]:
        if getattr(self, "_cache", None) is None:
            self._cache = self._compute()
        return self._cache

    def release(self) -> None:
        super().release()
        self._cache = None

    def _compute(self) -> dict[str, Tensor]:
        b, bd = self.b, self._in_dim()
        params = {k: p.detach() for k, p in self.params.items()}
        total: dict[str, Tensor] = {}
        for call, (inputs, grads) in enumerate(zip(self.inputs, self.grads)):
            if all(g is None for g in grads):
                continue
            if call in self.shared_calls:
                grads_i = self._shared(params, inputs, grads[0])
                for k, v in grads_i.items():
                    total[k] = total[k] + v if k in total else v
                continue
            leaves, spec = pytree.tree_flatten(inputs)
            in_dims = tuple(bd if isinstance(t, Tensor) and t.dim() > bd and t.shape[bd] == b
                            else None for t in leaves)
            used = [k for k, g in enumerate(grads) if g is not None]
            cots = tuple(grads[k] for k in used)
            out_dims = self._output_dims(leaves, in_dims, spec, used, cots)

            def per_ex(ins: tuple[Any, ...], cs: tuple[Tensor, ...],
                       spec: Any = spec, in_dims: tuple[Any, ...] = in_dims,
                       used: list[int] = used, out_dims: tuple[int, ...] = out_dims) -> Any:
                ins = [t.unsqueeze(d) if d is not None else t for t, d in zip(ins, in_dims)]
                args, kwargs = pytree.tree_unflatten(ins, spec)

                def f(p: dict[str, Tensor]) -> tuple[Tensor, ...]:
                    outs = pytree.tree_leaves(functional_call(self.module, p, args, kwargs))
                    return tuple(outs[k] for k in used)

                _, vjp_fn = torch.func.vjp(f, params)
                return vjp_fn(tuple(c.unsqueeze(d) for c, d in zip(cs, out_dims)))[0]

            try:
                with torch.enable_grad(), warnings.catch_warnings():
                    # vmap's slow fallback for ops without a batching rule (CPU attention
                    # kernels) is still exact; its performance notice is not for our users
                    warnings.filterwarnings("ignore", message="There is a performance drop")
                    grads_i = torch.func.vmap(per_ex, in_dims=(in_dims, out_dims))(
                        tuple(leaves), cots)
            except RuntimeError as e:
                if "random" in str(e).lower():
                    raise ValueError(
                        f"module '{self.name}' ({type(self.module).__name__}) uses randomness "
                        "(dropout in train mode?), which per-example gradients cannot replay; "
                        "call model.eval() first") from e
                # ops vmap cannot batch (RNN kernels write in place): one example at a time
                grads_i = self._loop(params, leaves, spec, in_dims, used, cots, out_dims)
            for k, v in grads_i.items():
                total[k] = total[k] + v if k in total else v
        return {k: v.reshape(b, -1) for k, v in total.items()}

    def _shared(self, params: dict[str, Tensor], inputs: Any, grad: Tensor
                ) -> dict[str, Tensor]:
        """A call whose output the whole batch shares: the same inputs for every example,
        each with its own output gradient ``grad[i]`` (see ``._gram.broadcast``)."""
        args, kwargs = inputs

        def f(p: dict[str, Tensor]) -> Tensor:
            return functional_call(self.module, p, args, kwargs)

        with torch.enable_grad():
            _, vjp_fn = torch.func.vjp(f, params)
            return torch.func.vmap(lambda c: vjp_fn(c)[0])(grad)

    def _loop(self, params: dict[str, Tensor], leaves: list[Any], spec: Any,
              in_dims: tuple[Any, ...], used: list[int], cots: tuple[Tensor, ...],
              out_dims: tuple[int, ...]) -> dict[str, Tensor]:
        """Per-example gradients by plain autograd, one batch-of-one call per example."""
        for name, m in self.module.named_modules():
            if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.training and m.p > 0:
                raise ValueError(f"module '{self.name}' contains dropout in train mode ('{name}'"
                                 "), which per-example gradients cannot replay; call "
                                 "model.eval() first")
        rows: dict[str, list[Tensor]] = {k: [] for k in params}
        leafs = {k: p.detach().requires_grad_(True) for k, p in params.items()}
        for i in range(self.b):
            ins = [t.narrow(d, i, 1) if d is not None else t for t, d in zip(leaves, in_dims)]
            args, kwargs = pytree.tree_unflatten(ins, spec)
            with torch.enable_grad():
                outs = pytree.tree_leaves(functional_call(self.module, leafs, args, kwargs))
                gs = torch.autograd.grad([outs[k] for k in used], list(leafs.values()),
                                         [c.narrow(d, i, 1) for c, d in zip(cots, out_dims)],
                                         allow_unused=True)
            for (k, p), g in zip(leafs.items(), gs):
                rows[k].append(torch.zeros_like(p) if g is None else g)
        return {k: torch.stack(v) for k, v in rows.items()}

    def _output_dims(self, leaves: list[Any], in_dims: tuple[Any, ...], spec: Any,
                     used: list[int], cots: tuple[Tensor, ...]) -> tuple[int, ...]:
        """Axis of each used output that holds the batch: size B in the batched call and
        1 when the module runs on the first example alone."""
        one = [t.narrow(d, 0, 1) if d is not None else t for t, d in zip(leaves, in_dims)]
        args, kwargs = pytree.tree_unflatten(one, spec)
        with torch.no_grad():
            outs = pytree.tree_leaves(self.module(*args, **kwargs))
        dims = []
        for k, full in zip(used, cots):
            small = outs[k].shape
            cand = [d for d in range(full.dim()) if full.shape[d] == self.b and small[d] == 1
                    and all(full.shape[e] == small[e] for e in range(full.dim()) if e != d)]
            if not cand or len(small) != full.dim():
                raise ValueError(
                    f"output {k} of module '{self.name}' ({type(self.module).__name__}) has "
                    f"shape {tuple(full.shape)} with no per-example axis of size {self.b}; "
                    "per-example gradients need per-example outputs")
            dims.append(cand[0])
        return tuple(dims)

    def gram(self, exclude: frozenset[str]) -> Tensor | None:
        per_ex = self._per_example()
        out = None
        for k, v in per_ex.items():
            if k not in exclude:
                out = add_gram(out, v)
        return out

    def per_example(self, attr: str) -> Tensor:
        per_ex = self._per_example()
        if attr in per_ex:
            return per_ex[attr]
        return torch.zeros(self.b, self.params[attr].numel(), dtype=self.params[attr].dtype,
                           device=self.params[attr].device)
