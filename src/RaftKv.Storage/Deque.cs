using System.Runtime.CompilerServices;

namespace RaftKv.Storage;

/// <summary>
/// A growable ring buffer: O(1) push at the back, pop at either end, and indexing. The log's per-entry index lives in
/// one, so that compaction (pop front) and truncation (pop back) never copy the whole log.
/// </summary>
internal sealed class Deque<T>
{
    private T[] _items;
    private int _head;
    private int _count;

    public Deque(int capacity = 16)
    {
        var c = 16;
        while (c < capacity) c <<= 1;
        _items = new T[c];
    }

    public int Count => _count;

    public ref T this[int index]
    {
        get
        {
            if ((uint)index >= (uint)_count) throw new ArgumentOutOfRangeException(nameof(index));
            return ref _items[(_head + index) & (_items.Length - 1)];
        }
    }

    public void PushBack(in T item)
    {
        if (_count == _items.Length) Grow();
        _items[(_head + _count) & (_items.Length - 1)] = item;
        _count++;
    }

    public void PopFront(int n)
    {
        if ((uint)n > (uint)_count) throw new ArgumentOutOfRangeException(nameof(n));
        if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            for (var i = 0; i < n; i++) _items[(_head + i) & (_items.Length - 1)] = default!;
        }
        _head = (_head + n) & (_items.Length - 1);
        _count -= n;
    }

    public void PopBack(int n)
    {
        if ((uint)n > (uint)_count) throw new ArgumentOutOfRangeException(nameof(n));
        if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            for (var i = _count - n; i < _count; i++) _items[(_head + i) & (_items.Length - 1)] = default!;
        }
        _count -= n;
    }

    public void Clear() => PopBack(_count);

    private void Grow()
    {
        var bigger = new T[_items.Length * 2];
        for (var i = 0; i < _count; i++) bigger[i] = _items[(_head + i) & (_items.Length - 1)];
        _items = bigger;
        _head = 0;
    }
}
