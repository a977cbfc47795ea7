from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 2

@test_case(points=None, hidden=False)
def test_on_a_tiny_bert(predict):
    import torch
    from transformers import BertConfig, BertForSequenceClassification
    from course_utils.grading.checks import expect_equal
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=3, hidden_dropout_prob=0.5)
    model = BertForSequenceClassification(config)
    batch = {'input_ids': torch.randint(0, 50, (6, 7)), 'labels': torch.tensor([0, 1, 2, 0, 1, 2])}
    pred = predict(model, batch)
    assert isinstance(pred, torch.Tensor) and tuple(pred.shape) == (6,), 'predict should return one class id per example, (batch,)'
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=batch['input_ids']).logits.argmax(-1)
    expect_equal(pred, expected, 'predictions should be the arg-max of the logits, with dropout off')

