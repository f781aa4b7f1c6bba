/* MissionLink: the payment providers' widgets on the wallet page.
 *
 * Loaded only when PortOne or Stripe is the configured provider, after that provider's own
 * browser SDK. `MissionLinkPay.pay(checkout, options)` opens the widget for a top-up the
 * server opened and resolves once the payer is done with it (null) or gave up (a message).
 * What was paid is never decided here: the page then asks the server to confirm, and the
 * server asks the provider.
 */
(() => {
  'use strict';

  async function portone(checkout, { method, redirectUrl }) {
    const request = {
      storeId: checkout.store_id,
      channelKey: checkout.channel_key,
      paymentId: checkout.payment_id,
      orderName: checkout.order_name,
      totalAmount: checkout.total_amount,
      currency: checkout.currency,
      payMethod: method || 'CARD',
      // Mobile browsers leave for the payment page and come back here with ?paymentId=.
      redirectUrl,
    };
    if (request.payMethod === 'VIRTUAL_ACCOUNT') {
      request.virtualAccount = { accountExpiry: { validHours: 72 } };
    }
    const response = await window.PortOne.requestPayment(request);
    return response && response.code ? (response.message || response.code) : null;
  }

  function stripe(checkout, { redirectUrl }) {
    const box = document.getElementById('provider-pay');
    const client = window.Stripe(checkout.publishable_key);
    const elements = client.elements({ clientSecret: checkout.client_secret });
    const element = elements.create('payment');
    const error = box.querySelector('.form-error');
    const pay = box.querySelector('[data-pay]');
    const close = box.querySelector('[data-close]');
    element.mount(box.querySelector('[data-stripe-element]'));
    error.hidden = true;
    box.hidden = false;
    return new Promise((resolve) => {
      const done = (message) => {
        pay.onclick = null;
        close.onclick = null;
        element.destroy();
        box.hidden = true;
        resolve(message);
      };
      pay.onclick = async () => {
        pay.disabled = true;
        try {
          // Cards that need no redirect finish here; others come back with ?payment_intent=.
          const result = await client.confirmPayment({
            elements, redirect: 'if_required', confirmParams: { return_url: redirectUrl } });
          if (result.error) { // a declined card: the payer may fix it and pay again
            error.textContent = result.error.message || result.error.code || '';
            error.hidden = false;
            return;
          }
          done(null);
        } finally {
          pay.disabled = false;
        }
      };
      close.onclick = () => done('closed');
    });
  }

  window.MissionLinkPay = {
    pay(checkout, options) {
      return checkout.provider === 'portone' ? portone(checkout, options)
        : stripe(checkout, options);
    },
  };
})();
