"""box_area and batched_nms with torchvision's semantics (XYXY boxes; per-category greedy NMS
suppressing IoU > threshold; kept indices in decreasing score order)."""

import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _iou_matrix(boxes: torch.Tensor) -> torch.Tensor:
    area = box_area(boxes)
    top_left = torch.max(boxes[:, None, :2], boxes[None, :, :2])
    bottom_right = torch.min(boxes[:, None, 2:], boxes[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area[:, None] + area[None, :] - inter)


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    order = torch.argsort(scores, descending=True)
    iou = _iou_matrix(boxes.float())
    same = idxs[:, None] == idxs[None, :]
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= same[i] & (iou[i] > iou_threshold)
    return torch.tensor(keep, dtype=torch.int64)
