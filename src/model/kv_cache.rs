//! Preallocated key/value cache for incremental decoding.
//!
//! Each layer's keys and values live in one buffer `[B, kv_heads, capacity, d]` allocated once,
//! before the prompt runs, for every position the generation can reach (prompt plus new
//! tokens, checked against the memory available). A forward pass writes its new positions in
//! place ([`crate::backend::attention::AttentionBackend::cache_write`]) and attention reads only
//! the filled prefix, a view of the buffer. A decode step therefore copies only its own key and
//! value rows, where growing the cache by concatenation (transformers' `DynamicCache`) copies
//! the whole cache of every layer at every step.
//!
//! Keys are stored after RoPE and before the grouped-query repetition. The cache serves
//! inference only: its contents are constants to autodiff.

use super::ModelError;
use crate::backend::LmBackend;
use burn::tensor::{DType, Tensor};

/// Cached keys and values of every layer.
pub struct KvCache<B: LmBackend> {
    /// Per layer; `None` only while that layer is being written.
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    batch: usize,
    kv_heads: usize,
    head_dim: usize,
    capacity: usize,
    len: usize,
}

impl<B: LmBackend> KvCache<B> {
    /// A cache of `capacity` positions for `batch` rows of `num_layers` layers, each holding
    /// `[batch, kv_heads, capacity, head_dim]` keys and values in `dtype`.
    ///
    /// Refuses (before allocating) a size that overflows or does not fit in the memory
    /// available, and a zero capacity or batch.
    pub fn new(
        num_layers: usize,
        [batch, kv_heads, capacity, head_dim]: [usize; 4],
        dtype: DType,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        if capacity == 0 || batch == 0 {
            return Err(ModelError::Input(format!(
                "a KV cache needs at least one row and one position (batch {batch}, capacity {capacity})"
            )));
        }
        let what = format!(
            "a KV cache of {capacity} positions × {batch} row(s) ({num_layers} layers, {kv_heads} KV heads of {head_dim})"
        );
        let dims = [num_layers, 2, batch, kv_heads, capacity, head_dim].map(|x| x as u64);
        crate::limits::check_elems(&what, &dims, dtype.size() as u64)?;
        let shape = [batch, kv_heads, capacity, head_dim];
        let layers = (0..num_layers)
            .map(|_| {
                Some((
                    Tensor::zeros(shape, (device, dtype)),
                    Tensor::zeros(shape, (device, dtype)),
                ))
            })
            .collect();
        Ok(KvCache {
            layers,
            batch,
            kv_heads,
            head_dim,
            capacity,
            len: 0,
        })
    }

    /// Number of positions already cached (the position of the next one).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most positions the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Rows of the batch the cache was made for.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Checks that a forward pass of `batch` rows and `t` new positions fits.
    pub fn check_room(&self, batch: usize, t: usize) -> Result<(), ModelError> {
        if batch != self.batch {
            return Err(ModelError::Input(format!(
                "the KV cache was made for {} row(s), not {batch}",
                self.batch
            )));
        }
        if t > self.capacity - self.len {
            return Err(ModelError::Input(format!(
                "the KV cache holds {} positions: {t} more after {} do not fit",
                self.capacity, self.len
            )));
        }
        Ok(())
    }

    /// Writes the new keys and values `[B, kv_heads, T, d]` of `layer` at positions
    /// `len..len + T` and returns the filled prefix `[B, kv_heads, len + T, d]` of each.
    /// [`KvCache::advance`] moves `len` on once every layer is written.
    pub fn write(
        &mut self,
        layer: usize,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> Result<(Tensor<B, 4>, Tensor<B, 4>), ModelError> {
        let [b, h, t, d] = k.dims();
        let expected = [self.batch, self.kv_heads, t, self.head_dim];
        if [b, h, t, d] != expected || v.dims() != expected {
            return Err(ModelError::Input(format!(
                "KV cache layer {layer}: keys {:?} and values {:?} do not match the cache's {expected:?}",
                k.dims(),
                v.dims()
            )));
        }
        self.check_room(b, t)?;
        let n = self.layers.len();
        let Some((ck, cv)) = self.layers.get_mut(layer).and_then(Option::take) else {
            return Err(ModelError::Input(format!(
                "the KV cache has {n} layers, not a layer {layer}"
            )));
        };
        // The buffers are moved out of the cache so that the write finds them uniquely held and
        // fills them in place.
        let at = self.len;
        let ck = B::cache_write(ck, k, at);
        let cv = B::cache_write(cv, v, at);
        let filled = [0..b, 0..h, 0..at + t, 0..d];
        let out = (ck.clone().slice(filled.clone()), cv.clone().slice(filled));
        self.layers[layer] = Some((ck, cv));
        Ok(out)
    }

    /// Counts `t` more positions as cached (after every layer wrote them).
    pub fn advance(&mut self, t: usize) -> Result<(), ModelError> {
        self.check_room(self.batch, t)?;
        self.len += t;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::KvCache;
    use crate::model::ModelError;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{DType, Tensor, TensorData};

    type A = Autodiff<Flex>;

    fn t4<B: crate::backend::LmBackend>(v: Vec<f32>, shape: [usize; 4]) -> Tensor<B, 4> {
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    fn host<B: crate::backend::LmBackend>(t: Tensor<B, 4>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    /// `[1, 2, n, 3]` rows numbered from `from`.
    fn rows<B: crate::backend::LmBackend>(from: usize, n: usize, sign: f32) -> Tensor<B, 4> {
        let v = (0..2 * n * 3)
            .map(|i| sign * (from * 100 + i) as f32)
            .collect();
        t4(v, [1, 2, n, 3])
    }

    /// The data pointer of a layer's key buffer.
    fn key_ptr(c: &KvCache<A>, layer: usize) -> usize {
        let k = c.layers[layer].as_ref().unwrap().0.clone().inner();
        k.into_primitive().tensor().bytes().as_ptr() as usize
    }

    #[test]
    fn writes_in_place_and_reads_the_filled_prefix() {
        let mut c = KvCache::<A>::new(2, [1, 2, 5, 3], DType::F32, &Default::default()).unwrap();
        assert_eq!((c.len(), c.capacity(), c.batch()), (0, 5, 1));
        assert!(c.is_empty());
        let (p0, p1) = (key_ptr(&c, 0), key_ptr(&c, 1));
        // A prompt of 3 positions in both layers, then one decode step.
        let (k, v) = c.write(0, rows(1, 3, 1.0), rows(1, 3, -1.0)).unwrap();
        // Checked after each write: a copy would be allocated while the old buffer is alive.
        assert_eq!(key_ptr(&c, 0), p0);
        assert_eq!(k.dims(), [1, 2, 3, 3]);
        assert_eq!(host(k), host(rows::<A>(1, 3, 1.0)));
        assert_eq!(host(v), host(rows::<A>(1, 3, -1.0)));
        c.write(1, rows(2, 3, 1.0), rows(2, 3, -1.0)).unwrap();
        assert_eq!(key_ptr(&c, 1), p1);
        c.advance(3).unwrap();
        assert_eq!(c.len(), 3);
        let (k, v) = c.write(0, rows(3, 1, 1.0), rows(3, 1, -1.0)).unwrap();
        assert_eq!(key_ptr(&c, 0), p0);
        assert_eq!(k.dims(), [1, 2, 4, 3]);
        let cat = |a, b| host(Tensor::<A, 4>::cat(vec![a, b], 2));
        assert_eq!(host(k), cat(rows(1, 3, 1.0), rows(3, 1, 1.0)));
        assert_eq!(host(v), cat(rows(1, 3, -1.0), rows(3, 1, -1.0)));
        c.write(1, rows(4, 1, 1.0), rows(4, 1, -1.0)).unwrap();
        c.advance(1).unwrap();
        assert_eq!(key_ptr(&c, 1), p1);
        // Layer 1 holds its own rows.
        let (k, _) = c.write(1, rows(5, 1, 1.0), rows(5, 1, -1.0)).unwrap();
        let want = host(Tensor::<A, 4>::cat(
            vec![rows(2, 3, 1.0), rows(4, 1, 1.0), rows(5, 1, 1.0)],
            2,
        ));
        assert_eq!(host(k), want);
    }

    #[test]
    fn overflow_and_mismatches_are_errors() {
        let mut c = KvCache::<A>::new(1, [1, 2, 4, 3], DType::F32, &Default::default()).unwrap();
        c.write(0, rows(1, 3, 1.0), rows(1, 3, 1.0)).unwrap();
        c.advance(3).unwrap();
        let msg = |e: ModelError| e.to_string();
        let e = c.write(0, rows(2, 2, 1.0), rows(2, 2, 1.0)).unwrap_err();
        assert_eq!(
            msg(e),
            "the KV cache holds 4 positions: 2 more after 3 do not fit"
        );
        assert!(c.check_room(1, 2).is_err());
        assert!(c.advance(2).is_err());
        assert_eq!(c.len(), 3);
        let e = c.check_room(2, 1).unwrap_err();
        assert_eq!(msg(e), "the KV cache was made for 1 row(s), not 2");
        let e = c.write(1, rows(2, 1, 1.0), rows(2, 1, 1.0)).unwrap_err();
        assert_eq!(msg(e), "the KV cache has 1 layers, not a layer 1");
        let e = c
            .write(0, t4(vec![0.0; 3], [1, 1, 1, 3]), rows(2, 1, 1.0))
            .unwrap_err();
        assert!(msg(e).contains("do not match the cache's [1, 2, 1, 3]"));
        // The last free position still takes a write after the refusals.
        let (k, _) = c.write(0, rows(2, 1, 1.0), rows(2, 1, 1.0)).unwrap();
        assert_eq!(k.dims(), [1, 2, 4, 3]);
        c.advance(1).unwrap();
        assert!(c.check_room(1, 1).is_err());
    }

    #[test]
    fn sizes_are_checked_before_allocating() {
        let dev = Default::default();
        let e = KvCache::<A>::new(16, [1, 8, usize::MAX, 64], DType::F32, &dev)
            .err()
            .unwrap();
        assert!(matches!(e, ModelError::Size(_)), "{e}");
        assert!(e.to_string().contains("overflows"), "{e}");
        let e = KvCache::<A>::new(16, [1, 8, 1 << 40, 64], DType::BF16, &dev)
            .err()
            .unwrap();
        assert!(e.to_string().contains("more than the"), "{e}");
        assert!(
            e.to_string()
                .contains("a KV cache of 1099511627776 positions"),
            "{e}"
        );
        let e = KvCache::<A>::new(2, [1, 2, 0, 4], DType::F32, &dev)
            .err()
            .unwrap();
        assert!(e.to_string().contains("capacity 0"), "{e}");
    }
}
